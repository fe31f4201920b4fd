// The ID service's listeners over TLS, on real sockets on 127.0.0.1: HTTPS and gRPC over TLS
// with the CA trusted, plain clients refused, and with client-certificate auth only a client
// whose certificate the CA signed served. Certificates come from the member's test kit.
import { readFile } from 'node:fs/promises';
import {
  credentials, makeClientConstructor, status as GrpcStatus, type ChannelCredentials, type Client,
  type ServiceError,
} from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSynodError } from '../../../base/index.js';
import {
  makeTestCertificates, type CertificateFiles, type TestCertificates,
} from '../../../server/tls/certificate-test-kit.js';
import { httpsRequest, type HttpsAnswer } from '../../../server/tls/tls-test-kit.js';
import { UuidV4Generator } from '../uuid.js';
import {
  TagRegistry, loadIdsServiceDefinition, startIdServer, type IdServer, type IdServerTls,
} from './index.js';

interface Pem {
  readonly cert: Buffer;
  readonly key: Buffer;
}

let certs: TestCertificates;
let ca: Buffer;
let foreignCa: Buffer;
let server: Pem;
let alice: Pem;
let mallory: Pem;

async function pemOf(files: CertificateFiles): Promise<Pem> {
  return { cert: await readFile(files.cert), key: await readFile(files.key) };
}

beforeAll(async () => {
  certs = await makeTestCertificates();
  ca = await readFile(certs.ca);
  foreignCa = await readFile(certs.foreignCa);
  server = await pemOf(certs.server);
  alice = await pemOf(certs.alice);
  mallory = await pemOf(certs.mallory);
}, 60_000);
afterAll(async () => certs?.remove());

/** An ID service serving UUIDs under the tag `uuid`, both listeners on 127.0.0.1. */
async function startUuidServer(tls: IdServerTls): Promise<{
  server: IdServer; close: () => Promise<void>;
}> {
  const registry = new TagRegistry({ fixed: { uuid: new UuidV4Generator() } });
  try {
    const started = await startIdServer({ source: registry, tls });
    return {
      server: started,
      close: async () => {
        await started.close();
        await registry.close();
      },
    };
  } catch (error) {
    await registry.close();
    throw error;
  }
}

/** GET `path` over HTTPS; resolves with the answer or with the error that ended the attempt. */
function httpsGet(
  port: number, path: string, tls: { ca?: Buffer; cert?: Buffer; key?: Buffer },
): Promise<HttpsAnswer | Error> {
  return httpsRequest({ port, path, tls: { servername: 'localhost', ...tls } })
    .catch((error: unknown) => error as Error);
}

const IdsClient = makeClientConstructor(loadIdsServiceDefinition(), 'Ids');
const callDeadlineMs = 5_000;

/** One `Next` call for two ids of `uuid`: the ids, or the call's error. */
function grpcNext(port: number, channel: ChannelCredentials): Promise<string[] | ServiceError> {
  const client: Client = new IdsClient(`127.0.0.1:${port}`, channel);
  type Callback = (error: ServiceError | null, value: { ids: string[] }) => void;
  type Method = (request: object, options: { deadline: number }, callback: Callback) => void;
  const next = (client as unknown as Record<string, Method>)['Next']!;
  return new Promise<string[] | ServiceError>((resolve) => {
    const callback: Callback = (error, value) => resolve(error === null ? value.ids : error);
    const deadline = Date.now() + callDeadlineMs;
    next.call(client, { tag: 'uuid', count: 2 }, { deadline }, callback);
  }).finally(() => client.close());
}

function statusOf(answer: HttpsAnswer | Error): number | string {
  return answer instanceof Error ? `refused: ${answer.message}` : answer.status;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('ID service over TLS', () => {
  let running: Awaited<ReturnType<typeof startUuidServer>>;
  beforeAll(async () => {
    running = await startUuidServer({ cert: server.cert, key: server.key });
  });
  afterAll(async () => running?.close());

  it('serves HTTPS to a client that trusts the CA, and refuses plain HTTP', async () => {
    const port = running.server.httpPort!;
    const answer = await httpsGet(port, '/v1/ids/uuid', { ca });
    expect(statusOf(answer)).toBe(200);
    expect(JSON.parse((answer as HttpsAnswer).body).id).toMatch(uuidPattern);
    expect(statusOf(await httpsGet(port, '/livez', { ca }))).toBe(200);
    await expect(fetch(`http://127.0.0.1:${port}/livez`)).rejects.toThrow();
    // A client that does not trust the CA refuses the server.
    expect(statusOf(await httpsGet(port, '/livez', { ca: foreignCa }))).toMatch(/^refused/);
  });

  it('serves gRPC over TLS, and refuses an insecure client', async () => {
    const port = running.server.grpcPort!;
    const ids = await grpcNext(port, credentials.createSsl(ca));
    expect(Array.isArray(ids) ? ids : ids.message).toHaveLength(2);
    expect((ids as string[])[1]).toMatch(uuidPattern);
    const insecure = await grpcNext(port, credentials.createInsecure());
    expect(Array.isArray(insecure) ? 'served' : insecure.code).toBe(GrpcStatus.UNAVAILABLE);
  });
});

describe('ID service over TLS with client-certificate auth', () => {
  let running: Awaited<ReturnType<typeof startUuidServer>>;
  beforeAll(async () => {
    running = await startUuidServer({ ...server, ca, clientCertAuth: true });
  });
  afterAll(async () => running?.close());

  it('over HTTPS, serves a client whose certificate the CA signed, refuses others', async () => {
    const port = running.server.httpPort!;
    expect(statusOf(await httpsGet(port, '/v1/ids/uuid', { ca, ...alice }))).toBe(200);
    expect(statusOf(await httpsGet(port, '/v1/ids/uuid', { ca }))).toMatch(/^refused/);
    expect(statusOf(await httpsGet(port, '/v1/ids/uuid', { ca, ...mallory }))).toMatch(/^refused/);
  });

  it('over gRPC, serves a client whose certificate the CA signed, refuses others', async () => {
    const port = running.server.grpcPort!;
    const served = await grpcNext(port, credentials.createSsl(ca, alice.key, alice.cert));
    expect(Array.isArray(served) ? served.length : served.message).toBe(2);
    for (const channel of [
      credentials.createSsl(ca), credentials.createSsl(ca, mallory.key, mallory.cert),
    ]) {
      const refused = await grpcNext(port, channel);
      expect(Array.isArray(refused) ? 'served' : refused.code).toBe(GrpcStatus.UNAVAILABLE);
    }
  });
});

describe('ID service TLS options', () => {
  async function refusal(tls: IdServerTls): Promise<string> {
    const outcome = await startUuidServer(tls).then(
      async (started) => {
        await started.close();
        return 'started';
      },
      (error: unknown) => error,
    );
    if (isSynodError(outcome, 'SYNOD_INVALID_CONFIG')) return outcome.message;
    throw new Error(`expected SYNOD_INVALID_CONFIG, got ${String(outcome)}`);
  }

  it('refuses a lone certificate, client-cert auth without a CA, a foreign key', async () => {
    const withoutKey = { cert: server.cert } as IdServerTls;
    expect(await refusal(withoutKey)).toMatch(/cert and tls\.key go together/);
    expect(await refusal({ cert: server.cert, key: Buffer.alloc(0) })).toMatch(/go together/);
    expect(await refusal({ ...server, clientCertAuth: true }))
      .toBe('tls.clientCertAuth needs tls.ca, the CA client certificates must be signed by');
    const mismatched = await refusal({ cert: server.cert, key: alice.key });
    expect(mismatched).toMatch(/^tls\.cert and tls\.key do not make a TLS identity/);
    expect(mismatched).not.toContain(alice.key.toString().split('\n')[1]!);
    expect(await refusal({ ...server, ca: Buffer.from('not a bundle') }))
      .toBe('tls.ca holds no PEM certificate');
  });
});
