import { credentials, Metadata, type Client } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { loadEtcdProto } from '../grpc/proto.js';
import { bindInsecure, createGrpcServer, shutdownServer } from './grpc-server.js';
import { requestIdHeader, requestLogInterceptor } from './request-log.js';

const proto = loadEtcdProto();

type HealthClient = Client & {
  Check(
    request: object, metadata: Metadata, options: object,
    callback: (error: Error | null, response: unknown) => void,
  ): { on(event: 'metadata', listener: (metadata: Metadata) => void): void };
};

describe('requestLogInterceptor', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A server whose clock moves `tookMs` between a call's start and its status. */
  async function serve(tookMs: number[]) {
    const logged: { level: string; fields: Record<string, unknown>; message: string }[] = [];
    const logger = {
      warn: (fields: object, message: string) => {
        logged.push({ level: 'warn', fields: fields as Record<string, unknown>, message });
      },
      error: (fields: object, message: string) => {
        logged.push({ level: 'error', fields: fields as Record<string, unknown>, message });
      },
    };
    let tick = 0;
    const nowMs = () => (tick++ % 2 === 0 ? 0 : tookMs.shift() ?? 0);
    const server = createGrpcServer({
      proto, interceptors: [requestLogInterceptor({ logger, memberId: () => 0xabcn, nowMs })],
    });
    const port = await bindInsecure(server, '127.0.0.1:0');
    cleanups.push(() => shutdownServer(server));
    const Health = proto.packageObject['grpc'] as unknown as {
      health: { v1: { Health: new (address: string, creds: unknown) => HealthClient } };
    };
    const client = new Health.health.v1.Health(`127.0.0.1:${port}`, credentials.createInsecure());
    cleanups.push(() => client.close());
    const check = (service: string) => new Promise<{ requestId: unknown; error: Error | null }>((resolve) => {
      let requestId: unknown;
      const call = client.Check({ service }, new Metadata(), {}, (error) => resolve({ requestId, error }));
      call.on('metadata', (metadata) => {
        requestId = metadata.get(requestIdHeader)[0];
      });
    });
    return { logged, check };
  }

  it('names each call with an id sent back to the client, and logs only the slow ones', async () => {
    const { logged, check } = await serve([20, 250]);
    const fast = await check('');
    const slow = await check('');
    expect(fast.error).toBeNull();
    expect([fast.requestId, slow.requestId]).toEqual(['abc-1', 'abc-2']);
    expect(logged).toEqual([{
      level: 'warn', message: 'request took too long',
      fields: expect.objectContaining({
        requestId: 'abc-2', method: '/grpc.health.v1.Health/Check', tookMs: 250, code: 'OK', expectedMs: 100,
      }),
    }]);
  });

  it('logs no request content, even for a slow failed call', async () => {
    const { logged, check } = await serve([300]);
    const { error } = await check('a-secret-service-name');
    expect(error?.message).toMatch(/NOT_FOUND/);
    expect(logged).toHaveLength(1);
    expect(logged[0]!.fields).toMatchObject({ code: 'NOT_FOUND', tookMs: 300 });
    expect(JSON.stringify(logged)).not.toContain('a-secret-service-name');
  });
});
