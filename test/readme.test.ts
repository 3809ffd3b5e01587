import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.join(__dirname, '..');

describe('README', () => {
  it('its example server and client run and exchange a chat line', () => {
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    const example = /```ts\n([\s\S]*?)```/.exec(readme)![1];
    const protoLine = /\/\/ chat\.proto: (.*)/.exec(example)![1];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringport-readme-'));
    fs.writeFileSync(path.join(dir, 'chat.proto'), `syntax = "proto3";\n${protoLine.replace(/ (?=message)/g, '\n')}\n`);
    fs.writeFileSync(
      path.join(dir, 'example.ts'),
      example.replace("from 'ringport'", `from ${JSON.stringify(path.join(root, 'src'))}`).replace('port: 7000', 'port: 0'),
    );
    const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(dir, 'example.ts')], {
      cwd: root,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(out).toMatch(/listening on \d+ with backend \w+/);
    expect(out).toMatch(/player\d+: hello, lobby/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
