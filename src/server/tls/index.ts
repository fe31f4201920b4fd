/**
 * TLS for the client port and the peer port, from etcd's flags (`--cert-file`, `--key-file`,
 * `--trusted-ca-file`, `--client-cert-auth` and their `--peer-` twins): the validated material,
 * its reloading when the files change, and the client certificate's CN recorded per connection.
 */

export {
  certificateCheckIntervalMsDefault, CertificateReloader, fixedTlsMaterial,
  type CertificateReloaderOptions, type TlsMaterialSource,
} from './certificate-reloader.js';
export {
  clientCommonNameOfCall, clientCommonNameOfSocket, recordClientCertificate,
  type CallWithAuthContext,
} from './client-identity.js';
export {
  commonNameOfSubject, readTlsMaterial, serverContextOptions, tlsMaterialOf, type TlsFileContents,
  type TlsFiles, type TlsMaterial,
} from './tls-material.js';
