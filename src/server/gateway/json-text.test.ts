/** Request bodies as text: one value for a unary call, a sequence of objects for a stream. */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonValueSplitter, parseJsonBody } from './json-text.js';

/** Feeds `chunks` and the end; returns every value and the first error. */
function split(
  chunks: (string | Buffer)[], valueBytesMax = 1024,
): { values: string[]; error: string | null } {
  const splitter = new JsonValueSplitter(valueBytesMax);
  const values: string[] = [];
  for (const chunk of chunks) {
    const result = splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    values.push(...result.values);
    if (result.error !== null) return { values, error: result.error.message };
  }
  const last = splitter.end();
  return { values, error: last.error?.message ?? null };
}

describe('parseJsonBody', () => {
  it('reads an empty or blank body as an empty request, as Go reads io.EOF', () => {
    expect(parseJsonBody('')).toEqual({ ok: true, value: null });
    expect(parseJsonBody(' \n\t')).toEqual({ ok: true, value: null });
    expect(parseJsonBody('{"key":"Zm9v"}')).toEqual({ ok: true, value: { key: 'Zm9v' } });
  });

  it('words syntax errors like Go where it can', () => {
    expect(parseJsonBody('garbage')).toEqual({
      ok: false, message: "invalid character 'g' looking for beginning of value",
    });
    expect(parseJsonBody('{"key":')).toEqual({ ok: false, message: 'unexpected EOF' });
    expect(parseJsonBody('{"key" 1}'))
      .toMatchObject({ ok: false, message: expect.stringMatching(/^invalid JSON: /) });
  });
});

describe('JsonValueSplitter', () => {
  it('splits objects however the chunks fall, braces in strings and escapes included', () => {
    const body = '{"a":"}{\\"","b":[{}]} \n{"c":1}{"d":"\\\\"}';
    for (let cut = 0; cut <= body.length; cut++) {
      expect(split([body.slice(0, cut), body.slice(cut)])).toEqual({
        values: ['{"a":"}{\\"","b":[{}]}', '{"c":1}', '{"d":"\\\\"}'], error: null,
      });
    }
  });

  it('keeps a multi-byte character split across chunks', () => {
    const bytes = Buffer.from('{"k":"é€"}');
    expect(split([bytes.subarray(0, 7), bytes.subarray(7)]))
      .toEqual({ values: ['{"k":"é€"}'], error: null });
  });

  it('stops at a value that is not an object, at a cut-off end, and at a value too large', () => {
    expect(split(['{"a":1} garbage'])).toEqual({
      values: ['{"a":1}'], error: "invalid character 'g' looking for beginning of value",
    });
    expect(split(['42']))
      .toEqual({ values: [], error: 'a streamed request must be a JSON object' });
    expect(split(['{"a":1} {"b":'])).toEqual({ values: ['{"a":1}'], error: 'unexpected EOF' });
    expect(split([`{"a":"${'x'.repeat(20)}"}`], 16).error).toMatch(/larger than 16 bytes/);
    expect(split(['{"a":"', 'x'.repeat(20)], 16).error).toMatch(/larger than 16 bytes/);
    const splitter = new JsonValueSplitter(16);
    splitter.push(Buffer.from('{"a":"x'));
    expect(splitter.pendingBytes).toBe(7);
  });

  it('never throws on arbitrary bytes and holds at most the bound', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 64 })), (chunks) => {
      const splitter = new JsonValueSplitter(100);
      for (const chunk of chunks) {
        const result = splitter.push(Buffer.from(chunk));
        expect(splitter.pendingBytes).toBeLessThanOrEqual(100);
        if (result.error !== null) return;
      }
      splitter.end();
    }));
  });
});
