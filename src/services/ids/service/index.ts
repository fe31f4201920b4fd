/**
 * The ID service: ids of any generator of `synod/ids` over HTTP/JSON and gRPC
 * (`synod.ids.v1.Ids`), with per-tag Prometheus metrics. `synod ids` (src/apps/ids-cli.ts) runs
 * it with segment tags kept in Synod.
 */

export {
  startIdServer, listenHostDefault, type IdServer, type IdServerOptions, type ListenAddress,
} from './id-server.js';
export {
  IdService, requestsInFlightMaxDefault, requestsInFlightMaxLimit,
  type DecodedId, type IdDecoder, type IdServiceOptions, type ServiceClock, type ServiceLogger,
} from './id-service.js';
export {
  TagRegistry, createdTagsMaxDefault, createdTagsMaxLimit,
  type IdGeneratorSource, type ServedGenerator, type TagRegistryOptions,
} from './tag-registry.js';
export {
  IdServiceMetrics, requestBucketBoundsSeconds, tagSeriesMaxDefault,
  type RequestMode, type RequestProtocol,
} from './id-metrics.js';
export {
  IdRequestError, failureOf, internalStatus, requestOutcomes, statusOfCode, tagUnknownCode,
  tagsExhaustedCode, type RequestFailure, type RequestOutcome, type RequestStatus,
} from './request-status.js';
export { batchCountMaxDefault, decodeIdMax } from './requests.js';
export {
  grpcCredentialsOf, httpsOptionsOf, listenerTlsOf, tlsHandshakeTimeoutMs, type IdServerTls,
  type ListenerTls,
} from './listener-tls.js';
export {
  createIdHttpServer, httpConnectionsMaxDefault, urlBytesMax, type IdHttpServerOptions,
} from './http-api.js';
export {
  createIdGrpcServer, grpcRequestBytesMax, idsProtoFile, idsProtoRootDirectory, idsServiceName,
  loadIdsServiceDefinition, synodCodeMetadataKey, type IdGrpcServerOptions,
} from './grpc-api.js';
