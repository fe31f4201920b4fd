/**
 * Auth for every RPC in one place: a grpc-js server interceptor that, while auth is enabled,
 * reads the caller's token from the `token` metadata (what etcd's clients send; the JSON gateway
 * passes `Authorization` there), checks it with the member's token provider (token-provider.ts:
 * signed tokens or JWT, per `--auth-token`), and lets each request message through
 * only when the user may do what `requirementOf` says it needs (required-permissions.ts). A
 * refused message never reaches the service: the call ends with etcd's status and message. Each
 * message of a stream is checked on its own (a Watch stream's every create request).
 *
 * With auth disabled every call passes and tokens are ignored, as in etcd. Checks read this
 * member's applied auth store, so a role or permission change applies to the next request of
 * every session (etcd's simple tokens behave so); a token stops working when its user is deleted
 * or changes password (a JWT, on any auth change: jwt-tokens.ts).
 * A caller with no token but a TLS client certificate acts as the certificate's common name, as
 * etcd does with --client-cert-auth — except the JSON gateway's calls, which present the member's
 * own certificate.
 */

import {
  Metadata, ServerInterceptingCall, status as GrpcStatus, type ServerInterceptingCallInterface,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { isSynodError, SynodError } from '../../base/index.js';
import { permitsRange, type AuthStore } from '../../kv/index.js';
import { statusOf } from '../api/status.js';
import { gatewayCallMetadataKey } from '../gateway/gateway.js';
import { requirementOf, type KeyCheck, type Requirement } from './required-permissions.js';
import type { TokenProvider } from './token-provider.js';
import { SignedTokenProvider } from './tokens.js';

/** What the interceptor needs of the member, bound late: the gRPC server exists before it. */
export interface AuthSource {
  /** The applied auth store, or null before the member runs (everything passes then). */
  auth(): AuthStore | null;
  /** The member's token provider, which checks the tokens `auth()`'s users present. */
  tokens(): TokenProvider;
  /** The keys attached to lease `id` (for revokes). */
  leaseKeys(id: bigint): readonly Uint8Array[];
  /** A response header of this member (for the watch cancel a refused create gets). */
  header(): object;
}

/** Options of `authInterceptor`. */
export interface AuthInterceptorOptions {
  readonly source: AuthSource;
  /** Wall-clock ms, for token expiry (injected in tests). */
  readonly nowMs?: () => number;
}

/** The user a request acts as, and why a request is refused. */
export type AuthDecision = { readonly allowed: true; readonly user: string | null } | { readonly allowed: false; readonly error: SynodError };

/**
 * Decides whether a request of `method` may run, given its `metadata` and the caller's TLS
 * certificate common name (null without one). Pure apart from the clock.
 */
export function authorize(options: {
  readonly store: AuthStore | null;
  readonly tokens: TokenProvider;
  readonly method: string;
  readonly request: unknown;
  readonly token: string | null;
  readonly certificateName: string | null;
  readonly nowMs: number;
  readonly leaseKeys: (id: bigint) => readonly Uint8Array[];
}): AuthDecision {
  const { store } = options;
  if (store === null || !store.enabled) return { allowed: true, user: null };
  const requirement = requirementOf(options.method, options.request);
  if (requirement.kind === 'open') return { allowed: true, user: null };
  let user: string;
  try {
    user = callerOf({ ...options, store });
  } catch (error) {
    if (!isSynodError(error)) throw error;
    return { allowed: false, error };
  }
  if (permits(store, user, requirement, options.leaseKeys)) return { allowed: true, user };
  return { allowed: false, error: new SynodError('SYNOD_PERMISSION_DENIED') };
}

/** The user the caller is, from its token or else its certificate. */
function callerOf(options: {
  readonly store: AuthStore;
  readonly tokens: TokenProvider;
  readonly token: string | null;
  readonly certificateName: string | null;
  readonly nowMs: number;
}): string {
  const { store, token, certificateName } = options;
  if (token === null || token === '') {
    if (certificateName !== null && store.user(certificateName) !== undefined) return certificateName;
    throw new SynodError('SYNOD_AUTH_USER_EMPTY');
  }
  return options.tokens.verify(token, { store, nowMs: options.nowMs });
}

function permits(
  store: AuthStore, user: string, requirement: Requirement, leaseKeys: (id: bigint) => readonly Uint8Array[],
): boolean {
  if (store.isRoot(user)) return true;
  switch (requirement.kind) {
    case 'open':
    case 'user':
      return true;
    case 'root':
      return false;
    case 'keys':
      return allPermitted(store, user, requirement.checks);
    case 'lease-keys': {
      if (!/^-?\d{1,20}$/.test(requirement.leaseId)) return false;
      const keys = leaseKeys(BigInt(requirement.leaseId));
      return allPermitted(store, user, keys.map((key) => ({ key, rangeEnd: new Uint8Array(0), wanted: 'WRITE' as const })));
    }
  }
}

function allPermitted(store: AuthStore, user: string, checks: readonly KeyCheck[]): boolean {
  const permissions = store.permissionsOf(user);
  return checks.every((check) => permitsRange(permissions, check));
}

/** The first value of metadata `key` as text, or null. */
function metadataText(metadata: Metadata | null, key: string): string | null {
  const value = metadata?.get(key)[0];
  if (value === undefined) return null;
  return typeof value === 'string' ? value : value.toString('utf8');
}

/** The common name of the caller's verified TLS client certificate, if any. */
function certificateNameOf(call: ServerInterceptingCallInterface): string | null {
  const subject = call.getAuthContext().sslPeerCertificate?.subject as { CN?: unknown } | undefined;
  return typeof subject?.CN === 'string' && subject.CN !== '' ? subject.CN : null;
}

const watchMethod = '/etcdserverpb.Watch/Watch';

/** The interceptor for `new Server({ interceptors: [authInterceptor(…)] })`. */
export function authInterceptor(options: AuthInterceptorOptions): ServerInterceptor {
  const nowMs = options.nowMs ?? (() => Date.now());
  return (method, call) => {
    let metadata: Metadata | null = null;
    let refused = false;
    return new ServerInterceptingCall(call, {
      start: (next) => next({
        onReceiveMetadata: (received, forward) => {
          metadata = received;
          forward(received);
        },
        onReceiveMessage: (message, forward) => {
          if (refused) return;
          const decision = authorize({
            store: options.source.auth(), tokens: options.source.tokens(),
            method: method.path, request: message,
            token: metadataText(metadata, 'token'),
            certificateName: metadataText(metadata, gatewayCallMetadataKey) === null ? certificateNameOf(call) : null,
            nowMs: nowMs(),
            leaseKeys: (id) => options.source.leaseKeys(id),
          });
          if (decision.allowed) {
            forward(message);
            return;
          }
          const { code, message: details } = statusOf(decision.error);
          if (method.path === watchMethod && isSynodError(decision.error, 'SYNOD_PERMISSION_DENIED')) {
            // etcd answers a refused watch on the stream and keeps it open for the others.
            call.sendMessage({
              header: options.source.header(), watch_id: '-1', created: true, canceled: true, cancel_reason: details,
            }, () => undefined);
            return;
          }
          refused = true;
          call.sendStatus({ code: code as GrpcStatus, details, metadata: new Metadata() });
        },
        onReceiveHalfClose: (forward) => {
          if (!refused) forward();
        },
      }),
    });
  };
}

/** The running member's auth state, for the interceptor; attached once the member runs. */
export class MemberAuthSource implements AuthSource {
  #node: MemberNodeView | null = null;
  #ids: { readonly clusterId: bigint; readonly memberId: bigint } = { clusterId: 0n, memberId: 0n };
  // Replaced on attach; before it `auth()` is null, so no token is checked with this one.
  #tokens: TokenProvider = new SignedTokenProvider();

  /** Binds the source to the member's node, ids and token provider (once the member runs). */
  attach(member: {
    readonly node: MemberNodeView;
    readonly clusterId: bigint;
    readonly memberId: bigint;
    readonly tokens: TokenProvider;
  }): void {
    this.#node = member.node;
    this.#ids = { clusterId: member.clusterId, memberId: member.memberId };
    this.#tokens = member.tokens;
  }

  tokens(): TokenProvider {
    return this.#tokens;
  }

  header(): object {
    return {
      cluster_id: this.#ids.clusterId.toString(), member_id: this.#ids.memberId.toString(),
      revision: String(this.#node?.stateMachine.store.currentRevision ?? 0), raft_term: String(this.#node?.term ?? 0),
    };
  }

  auth(): AuthStore | null {
    return this.#node?.stateMachine.store.auth ?? null;
  }

  leaseKeys(id: bigint): readonly Uint8Array[] {
    const store = this.#node?.stateMachine.store;
    if (store === undefined) return [];
    try {
      return store.leaseTimeToLive({ id, keys: true }).keys;
    } catch (error) {
      if (isSynodError(error)) return []; // An unknown lease: the revoke itself answers it.
      throw error;
    }
  }
}

/** What the source reads of the node. */
interface MemberNodeView {
  readonly term: number;
  readonly stateMachine: { readonly store: MemberStoreView };
}

/** What the source reads of the MVCC store. */
interface MemberStoreView {
  readonly auth: AuthStore;
  readonly currentRevision: number;
  leaseTimeToLive(request: { id: bigint; keys?: boolean }): { readonly keys: Uint8Array[] };
}
