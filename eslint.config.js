// Lint rules that keep the layers honest. The dependency direction between layers is checked by
// dependency-cruiser (.dependency-cruiser.cjs); this file bans ambient nondeterminism in the pure
// cores and the usual TypeScript foot-guns.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ambientNondeterminism = [
  {
    selector: "MemberExpression[object.name='Date'][property.name='now']",
    message: 'Pure cores read time from an injected Clock, never Date.now().',
  },
  {
    selector: "MemberExpression[object.name='Math'][property.name='random']",
    message: 'Pure cores draw randomness from an injected Random, never Math.random().',
  },
  {
    selector: "NewExpression[callee.name='Date']",
    message: 'Pure cores read time from an injected Clock, never new Date().',
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'dist-check/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['src/raft/**/*.ts', 'src/kv/**/*.ts', 'src/base/**/*.ts', 'src/check/**/*.ts', 'src/sim/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-syntax': ['error', ...ambientNondeterminism],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'Pure cores count ticks; timers live at the runtime edge.' },
        { name: 'setInterval', message: 'Pure cores count ticks; timers live at the runtime edge.' },
        { name: 'setImmediate', message: 'Pure cores count ticks; timers live at the runtime edge.' },
      ],
    },
  },
  {
    files: ['src/raft/**/*.ts', 'src/kv/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['node:*'], message: 'The pure cores do no I/O.' }] }],
    },
  },
);
