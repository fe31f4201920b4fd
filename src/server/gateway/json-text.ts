/**
 * JSON text in request bodies, as etcd's gateway reads it with Go's `json.Decoder`: a unary body is
 * one value (empty or whitespace-only means an empty request), and a client-streaming body (Watch,
 * LeaseKeepAlive) is a sequence of values, each sent as one request as soon as it is complete.
 * Syntax errors are worded like Go's for the common cases, so a client sees the same text from
 * Synod and from etcd.
 */

import { assert } from '../../base/index.js';

/** The outcome of parsing one JSON text: its value, or the reason it is not JSON. */
export type JsonParse =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly message: string };

const jsonValueStart = /^[\s]*[{["\-0-9tfn]/;

/**
 * Parses a unary request body. Empty or whitespace-only is `null` (Go's decoder reports io.EOF,
 * which the gateway reads as an empty request).
 */
export function parseJsonBody(text: string): JsonParse {
  if (text.trim() === '') return { ok: true, value: null };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    return { ok: false, message: syntaxErrorMessage(text, error) };
  }
}

/** Go's wording where it is easy to reproduce (a bad first character, a cut-off text). */
function syntaxErrorMessage(text: string, error: SyntaxError): string {
  const first = /\S/.exec(text);
  if (first !== null && !jsonValueStart.test(text)) {
    return `invalid character ${quotedCharacter(first[0])} looking for beginning of value`;
  }
  if (/end of JSON input/i.test(error.message)) return 'unexpected EOF';
  return `invalid JSON: ${error.message}`;
}

function quotedCharacter(character: string): string {
  return character === "'" ? `'\\''` : `'${character}'`;
}

/** What `JsonValueSplitter.push` and `end` hand back: complete value texts, then maybe an error. */
export interface SplitResult {
  /** Complete top-level values, in order, as UTF-8 text. */
  readonly values: readonly string[];
  /** Set when the body stopped being a sequence of objects; no more values follow. */
  readonly error: SplitError | null;
}

/** Why a streamed body cannot be split further. */
export interface SplitError {
  readonly message: string;
  /** The value outgrew `valueBytesMax` (HTTP 413), rather than being malformed (400). */
  readonly tooLarge: boolean;
}

/**
 * Splits a byte stream into top-level JSON values without parsing them: tracks string and
 * nesting state byte by byte (every structural character is ASCII, and no byte of a multi-byte
 * UTF-8 character is ASCII, so a character split across chunks is harmless). Only objects and
 * arrays are delimited (a request is an object; an array is kept so the decoder can name the
 * type mismatch as Go does); any other top-level value is an error. A value longer than
 * `valueBytesMax` is an error too, so one request never buffers more than that.
 */
export class JsonValueSplitter {
  readonly #valueBytesMax: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #depth = 0;
  #inString = false;
  #escaped = false;
  #failed = false;

  constructor(valueBytesMax: number) {
    assert(Number.isSafeInteger(valueBytesMax) && valueBytesMax > 0, 'valueBytesMax > 0');
    this.#valueBytesMax = valueBytesMax;
  }

  /** Bytes held for the value not yet complete. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Feeds `chunk`; returns the values it completed. Nothing more is accepted after an error. */
  push(chunk: Buffer): SplitResult {
    assert(!this.#failed, 'no push after an error');
    const values: string[] = [];
    let valueStart = 0;
    for (let index = 0; index < chunk.length; index++) {
      const byte = chunk[index]!;
      if (this.#depth === 0) {
        if (isJsonWhitespace(byte)) {
          valueStart = index + 1;
          continue;
        }
        if (byte !== 0x7b && byte !== 0x5b) return this.#fail(values, byte);
        valueStart = index;
        this.#depth = 1;
        continue;
      }
      if (!this.#step(byte)) continue;
      const tail = chunk.subarray(valueStart, index + 1);
      if (this.#pendingBytes + tail.length > this.#valueBytesMax) return this.#tooLarge(values);
      values.push(this.#take(tail));
      valueStart = index + 1;
    }
    if (this.#depth > 0) {
      const rest = chunk.subarray(valueStart);
      this.#pending.push(rest);
      this.#pendingBytes += rest.length;
      if (this.#pendingBytes > this.#valueBytesMax) return this.#tooLarge(values);
    }
    return { values, error: null };
  }

  /** The body ended: a value left open is an error (Go: unexpected EOF). */
  end(): SplitResult {
    if (this.#failed || this.#depth === 0) return { values: [], error: null };
    this.#failed = true;
    return { values: [], error: { message: 'unexpected EOF', tooLarge: false } };
  }

  /** Advances the state inside a value by `byte`; true when it closes the top-level value. */
  #step(byte: number): boolean {
    if (this.#inString) {
      if (this.#escaped) this.#escaped = false;
      else if (byte === 0x5c) this.#escaped = true;
      else if (byte === 0x22) this.#inString = false;
      return false;
    }
    if (byte === 0x22) this.#inString = true;
    else if (byte === 0x7b || byte === 0x5b) this.#depth++;
    else if (byte === 0x7d || byte === 0x5d) this.#depth--;
    assert(this.#depth >= 0, 'nesting depth never goes negative inside a value');
    return this.#depth === 0;
  }

  #take(tail: Buffer): string {
    const text = Buffer.concat([...this.#pending, tail]).toString('utf8');
    this.#pending = [];
    this.#pendingBytes = 0;
    return text;
  }

  #tooLarge(values: string[]): SplitResult {
    this.#failed = true;
    this.#pending = [];
    this.#pendingBytes = 0;
    const message = `a request in the body is larger than ${this.#valueBytesMax} bytes`;
    return { values, error: { message, tooLarge: true } };
  }

  #fail(values: string[], byte: number): SplitResult {
    this.#failed = true;
    const character = String.fromCharCode(byte);
    const message = /[-0-9tfn"]/.test(character)
      ? 'a streamed request must be a JSON object'
      : `invalid character ${quotedCharacter(character)} looking for beginning of value`;
    return { values, error: { message, tooLarge: false } };
  }
}

function isJsonWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}
