import { describe, expect, it } from 'vitest';
import type { AuthChange, AuthStore } from '../../kv/index.js';
import { authorize } from './auth-interceptor.js';
import { storeWith } from './auth-test-kit.js';
import { issueToken, passwordFingerprint, SignedTokenProvider } from './tokens.js';

const key = Buffer.alloc(32, 7).toString('base64');


const setup: AuthChange[] = [
  { action: 'userAdd', name: 'root', passwordHash: 'r' },
  { action: 'userGrantRole', user: 'root', role: 'root' },
  { action: 'userAdd', name: 'alice', passwordHash: 'a' },
  { action: 'roleAdd', name: 'reader' },
  { action: 'roleGrantPermission', name: 'reader', permission: { permType: 'READ', key: Buffer.from('app/'), rangeEnd: Buffer.from('app0') } },
  { action: 'userGrantRole', user: 'alice', role: 'reader' },
  { action: 'enable', tokenKey: key },
];

const tokenFor = (store: AuthStore, user: string) =>
  issueToken(key, { user, revision: store.revision, password: passwordFingerprint(store.user(user)!.passwordHash), expiresAtMs: 1_000 });

function decide(store: AuthStore, method: string, request: unknown, token: string | null, certificateName: string | null = null) {
  const decision = authorize({
    store, tokens: new SignedTokenProvider(), method, request, token, certificateName, nowMs: 0,
    leaseKeys: () => [Buffer.from('secret/k')],
  });
  return decision.allowed ? `allowed as ${decision.user}` : decision.error.code;
}

describe('authorize', () => {
  it('lets everything through while auth is off', () => {
    const store = storeWith(setup.slice(0, -1));
    expect(decide(store, '/etcdserverpb.KV/Put', { key: Buffer.from('x') }, null)).toBe('allowed as null');
  });

  it('checks the token, then the permission', () => {
    const store = storeWith(setup);
    const range = { key: Buffer.from('app/x'), range_end: Buffer.alloc(0) };
    expect(decide(store, '/etcdserverpb.KV/Range', range, null)).toBe('SYNOD_AUTH_USER_EMPTY');
    expect(decide(store, '/etcdserverpb.KV/Range', range, 'junk')).toBe('SYNOD_AUTH_INVALID_TOKEN');
    expect(decide(store, '/etcdserverpb.KV/Range', range, tokenFor(store, 'alice'))).toBe('allowed as alice');
    expect(decide(store, '/etcdserverpb.KV/Put', range, tokenFor(store, 'alice'))).toBe('SYNOD_PERMISSION_DENIED');
    expect(decide(store, '/etcdserverpb.Lease/LeaseRevoke', { ID: '5' }, tokenFor(store, 'alice'))).toBe('SYNOD_PERMISSION_DENIED');
    expect(decide(store, '/etcdserverpb.Lease/LeaseRevoke', { ID: '5' }, tokenFor(store, 'root'))).toBe('allowed as root');
    expect(decide(store, '/etcdserverpb.Auth/Authenticate', {}, null)).toBe('allowed as null');
  });

  it('stops a token when its user changes password or is deleted, and accepts a known certificate name', () => {
    const store = storeWith(setup);
    const token = tokenFor(store, 'alice');
    const range = { key: Buffer.from('app/x') };
    store.apply({ action: 'userChangePassword', name: 'alice', passwordHash: 'a2' });
    expect(decide(store, '/etcdserverpb.KV/Range', range, token)).toBe('SYNOD_AUTH_INVALID_TOKEN');
    expect(decide(store, '/etcdserverpb.KV/Range', range, null, 'alice')).toBe('allowed as alice');
    expect(decide(store, '/etcdserverpb.KV/Range', range, null, 'mallory')).toBe('SYNOD_AUTH_USER_EMPTY');
    store.apply({ action: 'userDelete', name: 'alice' });
    expect(decide(store, '/etcdserverpb.KV/Range', range, tokenFor(store, 'root').replace(/.$/, ''))).toBe('SYNOD_AUTH_INVALID_TOKEN');
  });
});
