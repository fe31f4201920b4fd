import { describe, expect, it } from 'vitest';
import { classifyPreface, http2Preface } from './preface.js';

describe('classifyPreface', () => {
  it('waits on every strict prefix of the preface and decides on the whole of it', () => {
    for (let length = 0; length < http2Preface.length; length += 1) {
      expect(classifyPreface(http2Preface.subarray(0, length))).toBe('undecided');
    }
    expect(classifyPreface(http2Preface)).toBe('http2');
    // The first frames usually arrive in the same read as the preface.
    expect(classifyPreface(Buffer.concat([http2Preface, Buffer.from([0, 0, 0, 4])]))).toBe('http2');
  });

  it('decides HTTP/1.1 at the first byte that departs from the preface', () => {
    expect(classifyPreface(Buffer.from('GET /health HTTP/1.1\r\n'))).toBe('http1');
    expect(classifyPreface(Buffer.from('PRI * HTTP/1.1'))).toBe('http1');
    expect(classifyPreface(Buffer.from('PUT'))).toBe('http1');
    expect(classifyPreface(Buffer.from([0x16, 0x03, 0x01]))).toBe('http1');
  });
});
