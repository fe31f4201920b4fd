/**
 * Passwords read as etcdctl 3.4 reads them: the `--user name` prompt and `user add|passwd`'s
 * interactive prompts (github.com/bgentry/speakeasy: the prompt on stdout, one line read with
 * the terminal's echo off, then a newline on stdout), and `--interactive=false`'s
 * `fmt.Scanf("%s")` (the first word of stdin).
 *
 * On a terminal the line comes from `CtlIo.readTerminalLine`. Otherwise it is the next line of
 * standard input, as speakeasy reads one when stdin is a pipe (there it also fails to turn echo
 * off and prints stty's complaint, which this does not), so `printf 'pw\npw\n' | synod ctl user
 * add alice` answers both prompts.
 */

import { assert } from '../../base/index.js';
import { CtlUsageError, exitCodes, type CtlIo } from './command.js';
import type { Credentials } from './connection.js';
import type { UserFlags } from './global-flags.js';

/** Standard input of one invocation as a source of passwords; each read moves past what it took. */
export class PasswordInput {
  readonly #io: CtlIo;
  /** All of standard input, read on first use when there is no terminal. */
  #stdin: string | null = null;
  /** Characters of `#stdin` already taken. Invariant: 0 ≤ offset ≤ stdin's length. */
  #offset = 0;

  constructor(io: CtlIo) {
    this.#io = io;
  }

  /** speakeasy.Ask: prints `prompt`, reads one line without echo, then ends the prompt's line. */
  async ask(prompt: string): Promise<string> {
    this.#io.stdout.write(prompt);
    const line = this.#io.readTerminalLine === undefined
      ? await this.#nextLine() : await this.#io.readTerminalLine();
    this.#io.stdout.write('\n');
    return line;
  }

  /**
   * `fmt.Scanf("%s", &password)`: skips blanks, then takes the word up to the next white space;
   * empty when a newline or the end comes first (Scanf's "unexpected newline").
   */
  async word(): Promise<string> {
    const text = await this.#text();
    const blanks = /[^\S\n]*/y;
    blanks.lastIndex = this.#offset;
    blanks.exec(text);
    const word = /\S*/y;
    word.lastIndex = blanks.lastIndex;
    const match = word.exec(text)![0];
    this.#offset = word.lastIndex;
    assert(this.#offset <= text.length, 'the offset stays within stdin');
    return match;
  }

  async #nextLine(): Promise<string> {
    const text = await this.#text();
    const end = text.indexOf('\n', this.#offset);
    const line = text.slice(this.#offset, end < 0 ? text.length : end);
    this.#offset = end < 0 ? text.length : end + 1;
    return line.endsWith('\r') ? line.slice(0, -1) : line;
  }

  async #text(): Promise<string> {
    if (this.#stdin === null) {
      const stdin = await this.#io.readStdin();
      this.#stdin = typeof stdin === 'string' ? stdin : stdin.toString('utf8');
    }
    return this.#stdin;
  }
}

/**
 * etcdctl's readPasswordInteractive (`user add`, `user passwd`): asked twice, refused when empty
 * or when the two differ.
 */
export async function newPasswordOf(input: PasswordInput, name: string): Promise<string> {
  const first = await input.ask(`Password of ${name}: `);
  if (first === '') throw new CtlUsageError('empty password');
  const second = await input.ask(`Type password of ${name} again for confirmation: `);
  if (first !== second) throw new CtlUsageError('given passwords are different');
  return first;
}

/**
 * The credentials `--user` gives, asking `Password: ` when it names a user alone. Null when
 * either part is empty: clientv3 then sends no Authenticate at all, so the calls go without a
 * token (and, with auth on, fail "user name is empty").
 */
export async function credentialsOf(
  user: UserFlags | null, input: PasswordInput,
): Promise<Credentials | null> {
  if (user === null) return null;
  const password = user.password ?? await input.ask('Password: ');
  return user.name === '' || password === '' ? null : { name: user.name, password };
}

/**
 * Reads one line from the terminal `stdin` with echo off (raw mode), as speakeasy does: Enter
 * ends it, Backspace removes a character, Ctrl-D ends it early, Ctrl-C exits 130.
 */
export function readTerminalLine(stdin: NodeJS.ReadStream): Promise<string> {
  assert(stdin.isTTY, 'a terminal');
  return new Promise((resolve) => {
    let line = '';
    const finish = (): void => {
      stdin.removeListener('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
    };
    const onData = (chunk: Buffer): void => {
      for (const character of chunk.toString('utf8')) {
        if (character === '\u0003') {
          finish();
          process.exit(exitCodes.interrupted);
        }
        if (character === '\r' || character === '\n' || character === '\u0004') {
          finish();
          resolve(line);
          return;
        }
        if (character === '\u007f' || character === '\b') line = [...line].slice(0, -1).join('');
        else line += character;
      }
    };
    stdin.setRawMode(true);
    stdin.on('data', onData);
    stdin.resume();
  });
}
