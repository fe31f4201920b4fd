/**
 * Test kit for TLS members: an in-process member on an https:// client URL, and small HTTPS and
 * TLS clients that say what the server presented.
 */

import { request } from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { createGrpcServer } from '../api/grpc-server.js';
import { parseServerFlags } from '../flags.js';
import { loadEtcdProto, type EtcdProto } from '../grpc/proto.js';
import { startServer, type RunningServer } from '../server.js';
import { etcdServices } from '../services.js';

let proto: EtcdProto | null = null;

/** The loaded protos, once per test file. */
export function testProto(): EtcdProto {
  proto ??= loadEtcdProto();
  return proto;
}

/** Starts one member from `flags` in a new data directory; `stop` closes it and removes the data. */
export async function startTlsMember(options: {
  readonly flags: readonly string[];
  readonly grpc?: GrpcServer;
  readonly certificateCheckIntervalMs?: number;
  readonly logger?: Logger;
}): Promise<{ server: RunningServer; stop: () => Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'synod-tls-member-'));
  try {
    const config = parseServerFlags(['--data-dir', dataDir, ...options.flags], {});
    const loaded = testProto();
    const server = await startServer({
      config, logger: options.logger ?? pino({ level: 'silent' }),
      grpc: options.grpc ?? createGrpcServer({ proto: loaded }),
      registerServices: etcdServices(loaded), synodVersion: '0.0.0-test',
      ...(options.certificateCheckIntervalMs === undefined
        ? {} : { certificateCheckIntervalMs: options.certificateCheckIntervalMs }),
    });
    return {
      server,
      stop: async () => {
        await server.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

/** An HTTPS answer. */
export interface HttpsAnswer {
  readonly status: number;
  readonly body: string;
}

/** One HTTPS request to 127.0.0.1:`port`; `tls` adds the CA, a client certificate, ALPN… */
export function httpsRequest(options: {
  readonly port: number;
  readonly path: string;
  readonly method?: 'GET' | 'POST';
  readonly body?: string;
  readonly tls: ConnectionOptions;
}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const outgoing = request({
      host: '127.0.0.1', port: options.port, path: options.path, method: options.method ?? 'GET',
      agent: false, ...options.tls,
    }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end(options.body);
  });
}

/** Completes a TLS handshake with 127.0.0.1:`port` and resolves with what was negotiated. */
export function handshake(port: number, tls: ConnectionOptions): Promise<{ commonName: string; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ...tls }, () => {
      const subject = socket.getPeerCertificate().subject as unknown as Record<string, string>;
      resolve({ commonName: subject.CN ?? '', alpn: socket.alpnProtocol });
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

/**
 * Resolves with how a TLS client's attempt ends: 'refused' when the server aborts the handshake
 * or closes the connection before answering, 'answered' when it answers an HTTP/1.1 request.
 * (With TLS 1.3 a client finishes its side before the server has checked its certificate, so
 * the refusal shows up as an alert or a close after the handshake.)
 */
export function requestOutcome(port: number, tls: ConnectionOptions): Promise<'refused' | 'answered'> {
  return httpsRequest({ port, path: '/version', tls }).then(() => 'answered' as const, () => 'refused' as const);
}

/** Base64 of `text`, as the JSON gateway takes keys and values. */
export function base64(text: string): string {
  return Buffer.from(text).toString('base64');
}
