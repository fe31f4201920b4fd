/**
 * Certificate rotation without a restart. Every `checkIntervalMs` the reloader stats the
 * certificate, key and CA files; when any of them changed (size, mtime, ctime or inode: an
 * in-place write or a rename over it), it reads all three again (tls-material.ts) and hands the
 * new material to its listeners, which install it for new handshakes (`server.setSecureContext`)
 * and new dials. Connections already open keep the certificate they were made with, as with
 * etcd. A new file set that does not validate (a key written before its certificate, a
 * truncated file) is logged and the previous material kept; the next change is tried again.
 *
 * The cost is bounded: three `stat` calls per interval, one check at a time, nothing read
 * unless something changed.
 */

import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { assert, isSynodError } from '../../base/index.js';
import { readTlsMaterial, type TlsFiles, type TlsMaterial } from './tls-material.js';

/** How often the files are checked for a change by default. */
export const certificateCheckIntervalMsDefault = 5_000;

/** Options of `CertificateReloader.open`. */
export interface CertificateReloaderOptions {
  readonly files: TlsFiles;
  readonly logger: Logger;
  /** How often to stat the files; default `certificateCheckIntervalMsDefault`. */
  readonly checkIntervalMs?: number;
}

/** Where a TLS endpoint reads its material: now, and each time it changes. */
export interface TlsMaterialSource {
  /** The material new handshakes and dials use now. */
  readonly current: TlsMaterial;
  /** Calls `listener` with each new material; returns the unsubscribe function. */
  onReload(listener: (material: TlsMaterial) => void): () => void;
}

/** A source that never changes (tests, or material read once). */
export function fixedTlsMaterial(material: TlsMaterial): TlsMaterialSource {
  return { current: material, onReload: () => () => {} };
}

/** The current TLS material of one side (client port or peers), kept fresh from its files. */
export class CertificateReloader implements TlsMaterialSource {
  readonly files: TlsFiles;
  readonly #logger: Logger;
  readonly #checkIntervalMs: number;
  readonly #listeners = new Set<(material: TlsMaterial) => void>();
  #current: TlsMaterial;
  #signature: string;
  #timer: NodeJS.Timeout | null = null;
  #checking = false;

  private constructor(
    options: CertificateReloaderOptions, material: TlsMaterial, signature: string,
  ) {
    this.files = options.files;
    this.#logger = options.logger;
    this.#checkIntervalMs = options.checkIntervalMs ?? certificateCheckIntervalMsDefault;
    this.#current = material;
    this.#signature = signature;
  }

  /** Reads the files once; a problem is SYNOD_INVALID_CONFIG (the member does not start). */
  static async open(options: CertificateReloaderOptions): Promise<CertificateReloader> {
    const interval = options.checkIntervalMs ?? certificateCheckIntervalMsDefault;
    assert(Number.isSafeInteger(interval) && interval > 0, 'the check interval is an integer > 0');
    // The signature is taken first: a change racing with the read is seen at the next check.
    const signature = await signatureOf(options.files);
    const material = await readTlsMaterial(options.files);
    return new CertificateReloader(options, material, signature);
  }

  /** The material new handshakes and dials use now. */
  get current(): TlsMaterial {
    return this.#current;
  }

  /** Calls `listener` with each new material; returns the unsubscribe function. */
  onReload(listener: (material: TlsMaterial) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Starts checking the files (idempotent). The timer does not keep the process alive. */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => void this.check(), this.#checkIntervalMs);
    this.#timer.unref();
  }

  /** Stops checking. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /**
   * Checks the files now; resolves true when new material was installed. One check at a time:
   * a call while one runs resolves false at once.
   */
  async check(): Promise<boolean> {
    if (this.#checking) return false;
    this.#checking = true;
    try {
      return await this.#reloadIfChanged();
    } finally {
      this.#checking = false;
    }
  }

  async #reloadIfChanged(): Promise<boolean> {
    const signature = await signatureOf(this.files);
    if (signature === this.#signature) return false;
    this.#signature = signature;
    let material: TlsMaterial;
    try {
      material = await readTlsMaterial(this.files);
    } catch (error) {
      if (!isSynodError(error, 'SYNOD_INVALID_CONFIG')) throw error;
      this.#logger.warn(
        { err: error.message },
        'TLS files changed but do not validate; keeping the current certificate',
      );
      return false;
    }
    const previous = this.#current;
    this.#current = material;
    this.#logger.info(
      {
        commonName: material.commonName, fingerprint256: material.fingerprint256,
        previous: previous.fingerprint256,
      },
      `TLS certificate reloaded (--${this.files.flagPrefix}cert-file)`,
    );
    for (const listener of this.#listeners) listener(material);
    return true;
  }
}

/** What identifies the files' current versions; a missing file is part of the signature. */
async function signatureOf(files: TlsFiles): Promise<string> {
  const paths = [files.certFile, files.keyFile];
  if (files.trustedCaFile !== null) paths.push(files.trustedCaFile);
  const parts = await Promise.all(paths.map(async (path) => {
    try {
      const info = await stat(path, { bigint: true });
      return `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
    } catch (error) {
      return `missing:${(error as NodeJS.ErrnoException).code ?? 'unknown'}`;
    }
  }));
  return parts.join('|');
}
