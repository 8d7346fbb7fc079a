// `npm test`: typecheck, lint, then the ava suite; ends with one line "N passed, N failed".
// Typecheck and lint count as one check each, so a type or lint error is a failure too.
import { spawn } from 'node:child_process';

function run(command, args, { capture = false } = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: capture ? ['inherit', 'pipe', 'pipe'] : 'inherit', env: { ...process.env, FORCE_COLOR: process.env.FORCE_COLOR ?? '0' } });
    let output = '';
    if (capture) {
      child.stdout.on('data', (chunk) => { output += chunk; process.stdout.write(chunk); });
      child.stderr.on('data', (chunk) => { output += chunk; process.stderr.write(chunk); });
    }
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

let passed = 0;
let failed = 0;
for (const [name, args] of [['typecheck', ['tsc', '--noEmit']], ['lint', ['eslint', '.']]]) {
  console.log(`\n== ${name}`);
  const { code } = await run('npx', args);
  if (code === 0) passed++;
  else { failed++; console.log(`${name} FAILED`); }
}

console.log('\n== tests');
const { code, output } = await run('npx', ['ava', ...process.argv.slice(2)], { capture: true });
const count = (re) => Number(output.match(re)?.[1] ?? 0);
// With failures ava prints no "N tests passed" line: count the passing tests' ticks instead.
const testsPassed = count(/(\d+) tests? passed/) || (output.match(/^\s*✔ /gm) ?? []).length;
const testsFailed = count(/(\d+) tests? failed/) + count(/(\d+) uncaught exceptions?/) + count(/(\d+) unhandled rejections?/) + count(/(\d+) tests? timed out/);
passed += testsPassed;
failed += testsFailed;
// ava can exit non-zero with no failed test counted (e.g. a file that fails to load).
if (code !== 0 && testsFailed === 0) failed++;
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
