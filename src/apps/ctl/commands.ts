/**
 * Every `synod ctl` command, one group per module, and the lookup of a command line's command
 * words. The order here is the order of the usage text.
 */

import { authCommands } from './auth-commands.js';
import type { CommandSpec } from './command.js';
import { endpointCommands } from './endpoint-commands.js';
import { kvCommands } from './kv-commands.js';
import { leaseCommands } from './lease-commands.js';
import { maintenanceCommands } from './maintenance-commands.js';
import { memberCommands } from './member-commands.js';
import { roleCommands } from './role-commands.js';
import { txnCommands } from './txn-command.js';
import { userCommands } from './user-commands.js';
import { watchCommands } from './watch-command.js';

/** The command table. */
export const commands: readonly CommandSpec[] = Object.freeze([
  ...kvCommands,
  ...txnCommands,
  ...watchCommands,
  ...leaseCommands,
  ...memberCommands,
  ...endpointCommands,
  ...maintenanceCommands,
  ...authCommands,
  ...userCommands,
  ...roleCommands,
]);

/** Command words that name a group of subcommands (`lease`, `member`, …). */
export const commandGroups: ReadonlySet<string> = new Set(
  commands.filter((spec) => spec.path.length > 1).map((spec) => spec.path[0]!),
);

/** The command whose words start `positionals`, or null. */
export function findCommand(positionals: readonly string[]): CommandSpec | null {
  const matches = (spec: CommandSpec) =>
    spec.path.every((word, index) => positionals[index] === word);
  return commands.find(matches) ?? null;
}

/** The usage text: every command with its synopsis, then the global flags. */
export function usageText(): string {
  const lines = commands.map((spec) =>
    `  synod ctl ${[...spec.path, spec.synopsis].filter((part) => part !== '').join(' ')}`);
  return [
    'usage: synod ctl [global flags] COMMAND [flags]',
    '',
    'commands:',
    ...lines,
    '',
    'global flags (or env SYNODCTL_<FLAG>, then ETCDCTL_<FLAG>; e.g. SYNODCTL_ENDPOINTS):',
    '  --endpoints HOST:PORT[,…]  (127.0.0.1:2379)   --dial-timeout 2s   --command-timeout 5s',
    '  -w, --write-out simple|json|table   --hex   --cacert FILE   --cert FILE   --key FILE',
    '  --user NAME[:PASSWORD]  (asks for the password when absent)   --password PASSWORD',
    '',
    'docs/ctl.md has an example of every command and how it differs from etcdctl.',
    '',
  ].join('\n');
}
