import { describe, expect, it } from 'vitest';
import type { CtlIo } from './command.js';
import { PasswordInput, credentialsOf, newPasswordOf } from './password-input.js';

/** An io whose stdin is `stdin` and whose stdout is collected in `printed()`. */
function pipedIo(stdin: string): { readonly io: CtlIo; readonly printed: () => string } {
  let stdout = '';
  const io: CtlIo = {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: () => true },
    readStdin: async () => stdin,
    env: {},
    interrupt: new AbortController().signal,
  };
  return { io, printed: () => stdout };
}

describe('PasswordInput', () => {
  it('asks as speakeasy does: the prompt, the next line of stdin, then a newline', async () => {
    const { io, printed } = pipedIo('first\r\nsecond\nthird');
    const input = new PasswordInput(io);
    expect(await input.ask('Password: ')).toBe('first');
    expect(await input.ask('Again: ')).toBe('second');
    expect(await input.ask('Last: ')).toBe('third');
    expect(await input.ask('Past the end: ')).toBe('');
    expect(printed()).toBe('Password: \nAgain: \nLast: \nPast the end: \n');
  });

  it('reads a word as fmt.Scanf("%s"): blanks skipped, nothing before a newline', async () => {
    expect(await new PasswordInput(pipedIo(' \tpw rest\n').io).word()).toBe('pw');
    expect(await new PasswordInput(pipedIo('\npw\n').io).word()).toBe('');
    expect(await new PasswordInput(pipedIo('').io).word()).toBe('');
    const twice = new PasswordInput(pipedIo('one two').io);
    expect([await twice.word(), await twice.word()]).toEqual(['one', 'two']);
  });

  it('reads from the terminal when there is one', async () => {
    const { io, printed } = pipedIo('not read');
    const input = new PasswordInput({ ...io, readTerminalLine: async () => 'typed' });
    expect(await input.ask('Password: ')).toBe('typed');
    expect(printed()).toBe('Password: \n');
  });

  it('refuses an empty or unconfirmed new password, as etcdctl', async () => {
    const confirmed = new PasswordInput(pipedIo('pw\npw\n').io);
    expect(await newPasswordOf(confirmed, 'alice')).toBe('pw');
    await expect(newPasswordOf(new PasswordInput(pipedIo('\n').io), 'alice'))
      .rejects.toThrow('empty password');
    await expect(newPasswordOf(new PasswordInput(pipedIo('a\nb\n').io), 'alice'))
      .rejects.toThrow('given passwords are different');
  });

  it('gives no credentials when the name or the password is empty, as clientv3', async () => {
    const input = new PasswordInput(pipedIo('asked\n').io);
    expect(await credentialsOf(null, input)).toBeNull();
    expect(await credentialsOf({ name: 'alice', password: '' }, input)).toBeNull();
    expect(await credentialsOf({ name: '', password: 'pw' }, input)).toBeNull();
    expect(await credentialsOf({ name: 'alice', password: null }, input))
      .toEqual({ name: 'alice', password: 'asked' });
  });
});
