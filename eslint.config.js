// Lint rules that keep the simulator's replay honest and the core pure (see ../shared/STYLE.md).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const realTimeOrRandomness = [
  { object: 'Date', property: 'now', message: 'Read time from an injected Clock (src/platform/ only).' },
  { object: 'Math', property: 'random', message: 'Use an injected Random (src/util/random.ts).' },
  { object: 'performance', property: 'now', message: 'Read time from an injected Clock (src/platform/ only).' },
];
const timers = ['setTimeout', 'setInterval', 'setImmediate'].map((name) => ({
  name,
  message: 'Schedule through an injected Clock/scheduler (src/platform/ only).',
}));

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.cutover/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: false } },
    rules: {
      'no-restricted-properties': ['error', ...realTimeOrRandomness],
      'no-restricted-globals': ['error', ...timers],
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='globalThis'][property.name=/^(setTimeout|setInterval|setImmediate)$/]", message: 'Timers only in src/platform/.' },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Plain Node.js scripts (the test runner, the bin shim).
    files: ['scripts/**/*.mjs', 'bin/**/*.js'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } },
  },
  {
    // Example slices: plain ESM JavaScript run by a node, outside the simulator; timers and real time allowed.
    files: ['examples/**/*.js'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' } },
    rules: { 'no-restricted-globals': 'off', 'no-restricted-syntax': 'off', 'no-restricted-properties': 'off' },
  },
  {
    files: ['src/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'error' },
  },
  {
    // The platform layer is the one place that reads real time and OS randomness.
    files: ['src/platform/**/*.ts'],
    rules: { 'no-restricted-properties': 'off', 'no-restricted-globals': 'off', 'no-restricted-syntax': 'off' },
  },
  {
    // The pure core: no I/O, no logging, no network, no storage engine.
    files: ['src/raft/**/*.ts', 'src/kv/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'src/raft and src/kv are pure: no Node built-ins.' },
            { group: ['level', 'level/*', 'classic-level', 'classic-level/*'], message: 'src/raft and src/kv are pure: no storage engine.' },
            { group: ['@grpc/*'], message: 'src/raft and src/kv are pure: no network.' },
            { group: ['pino', 'pino/*'], message: 'src/raft and src/kv are pure: no logging.' },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: 'FunctionDeclaration[async=true], FunctionExpression[async=true], ArrowFunctionExpression[async=true]', message: 'src/raft and src/kv are not async.' },
        { selector: 'AwaitExpression', message: 'src/raft and src/kv are not async.' },
      ],
    },
  },
);
