import { describe, expect, it } from 'vitest';
import { isSynodError } from '../../base/index.js';
import { parseServerFlags } from '../flags.js';
import { jwtTtlMsDefault, parseAuthTokenOption } from './auth-token-option.js';

function rejection(text: string): string {
  try {
    parseAuthTokenOption(text);
  } catch (error) {
    if (isSynodError(error, 'SYNOD_INVALID_CONFIG')) return error.message;
    throw error;
  }
  return 'accepted';
}

describe('--auth-token', () => {
  it('is simple by default, from the flag or ETCD_AUTH_TOKEN, the flag first', () => {
    expect(parseServerFlags([], {}).authToken).toEqual({ kind: 'simple' });
    const jwt = 'jwt,pub-key=/k/pub.pem,sign-method=ES256';
    expect(parseServerFlags([], { ETCD_AUTH_TOKEN: jwt }).authToken.kind).toBe('jwt');
    expect(parseServerFlags(['--auth-token', 'simple'], { ETCD_AUTH_TOKEN: jwt }).authToken.kind).toBe('simple');
  });

  it("reads etcd's jwt options in any order, with its 5 minute default ttl", () => {
    expect(parseAuthTokenOption('jwt,pub-key=/k/a.pub,priv-key=/k/a=b.key,sign-method=RS256')).toEqual({
      kind: 'jwt', signMethod: 'RS256', publicKeyFile: '/k/a.pub', privateKeyFile: '/k/a=b.key', ttlMs: jwtTtlMsDefault,
    });
    const verifyOnly = parseAuthTokenOption('jwt,ttl=1h30m,sign-method=EdDSA,pub-key=/k/ed.pub');
    expect(verifyOnly).toMatchObject({ privateKeyFile: null, ttlMs: 5_400_000 });
    expect(parseAuthTokenOption('jwt,sign-method=HS512,priv-key=/k/secret,ttl=90s')).toMatchObject({ ttlMs: 90_000 });
  });

  it('refuses unknown kinds and options, repeats, empty values and a missing sign method', () => {
    expect(rejection('bogus')).toMatch(/must be "simple" or "jwt/);
    expect(rejection('simple,ttl=5m')).toMatch(/"simple" takes no options/);
    expect(rejection('jwt,pub-key=/a,sign-method=RS256,priv-kye=/b')).toMatch(/unknown jwt option "priv-kye=\/b"/);
    expect(rejection('jwt,pub-key=/a,pub-key=/b,sign-method=RS256')).toMatch(/pub-key is given twice/);
    expect(rejection('jwt,pub-key=,sign-method=RS256')).toMatch(/pub-key= needs a value/);
    expect(rejection('jwt,pub-key=/a')).toMatch(/needs sign-method=/);
    expect(rejection('jwt,pub-key=/a,sign-method=none')).toMatch(/unknown sign-method "none"/);
    expect(rejection('jwt,pub-key=/a,sign-method=rs256')).toMatch(/unknown sign-method/);
  });

  it('needs the keys the method uses', () => {
    expect(rejection('jwt,sign-method=ES256')).toMatch(/ES256 needs pub-key=PATH/);
    expect(rejection('jwt,sign-method=HS256,pub-key=/a')).toMatch(/HS256 needs priv-key/);
    expect(rejection('jwt,sign-method=HS256,priv-key=/s,pub-key=/a')).toMatch(/HS256 takes no pub-key/);
  });

  it('refuses a ttl that is not a duration, or under a second, or over a year', () => {
    for (const ttl of ['5', '5 m', 'm', '-5m', '5d']) {
      expect(rejection(`jwt,pub-key=/a,sign-method=RS256,ttl=${ttl}`)).toMatch(/not a duration/);
    }
    expect(rejection('jwt,pub-key=/a,sign-method=RS256,ttl=500ms')).toMatch(/between 1s and/);
    expect(rejection('jwt,pub-key=/a,sign-method=RS256,ttl=9000h')).toMatch(/between 1s and/);
  });

  it('names the flag in every message', () => {
    expect(rejection('jwt')).toMatch(/^--auth-token: /);
  });
});
