import { describe, expect, it } from 'vitest';
import { permissionRange } from './role-commands.js';

describe('permissionRange', () => {
  const none = { prefix: false, fromKey: false };
  const text = (range: { key: Buffer; rangeEnd: Buffer }) =>
    [range.key.toString('latin1'), range.rangeEnd.toString('latin1')];

  it('reads KEY [END] with --prefix and --from-key as etcdctl\'s permRange', () => {
    expect(text(permissionRange(['k'], none))).toEqual(['k', '']);
    expect(text(permissionRange(['a', 'z'], none))).toEqual(['a', 'z']);
    expect(text(permissionRange(['app/'], { prefix: true, fromKey: false })))
      .toEqual(['app/', 'app0']);
    expect(text(permissionRange(['x'], { prefix: false, fromKey: true }))).toEqual(['x', '\0']);
    // The empty key is "\0": alone, or every key with either flag (an END is then ignored).
    expect(text(permissionRange([''], none))).toEqual(['\0', '']);
    expect(text(permissionRange(['', 'z'], { prefix: true, fromKey: false })))
      .toEqual(['\0', '\0']);
  });

  it('refuses the flag combinations etcdctl refuses', () => {
    const both = { prefix: true, fromKey: true };
    expect(() => permissionRange(['k'], both)).toThrow('mutually exclusive');
    expect(() => permissionRange([''], both)).toThrow('mutually exclusive');
    expect(() => permissionRange(['a', 'z'], { prefix: true, fromKey: false }))
      .toThrow('unexpected endkey argument with --prefix flag');
    expect(() => permissionRange(['a', 'z'], { prefix: false, fromKey: true }))
      .toThrow('unexpected endkey argument with --from-key flag');
  });
});
