import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { PACKETS, PROTO_PATH } from './protocol';

/** The web client's sources (web/) and where its bundle goes (web/dist/, gitignored). */
export const WEB_SOURCE_DIR = path.join(__dirname, 'web');
export const WEB_BUNDLE_DIR = path.join(WEB_SOURCE_DIR, 'dist');

/** Copied as they are, beside the bundled app.js. */
const STATIC_FILES = ['index.html', 'styles.css'];
/** Written last: the bundle is whole once it is there, and its time is the bundle's. */
const STAMP = path.join(WEB_BUNDLE_DIR, '.built');

/** Every file the bundle is made from: the client's sources, the protocol, and this script. */
function sources(): string[] {
  const web = fs
    .readdirSync(WEB_SOURCE_DIR)
    .filter((name) => /\.(ts|html|css)$/.test(name))
    .map((name) => path.join(WEB_SOURCE_DIR, name));
  return [...web, PROTO_PATH, path.join(__dirname, 'protocol.ts'), __filename];
}

function isStale(): boolean {
  let built: number;
  try {
    built = fs.statSync(STAMP).mtimeMs;
  } catch {
    return true;
  }
  return sources().some((file) => fs.statSync(file).mtimeMs > built);
}

/**
 * The client imports `lobby-protocol` and gets what the server uses: the
 * packet ids of protocol.ts, and lobby.proto as protobufjs JSON, so the
 * browser needs neither the .proto file nor protobufjs's parser.
 */
const lobbyProtocol = {
  name: 'lobby-protocol',
  setup(build: import('esbuild').PluginBuild): void {
    build.onResolve({ filter: /^lobby-protocol$/ }, () => ({ path: PROTO_PATH, namespace: 'lobby-protocol' }));
    build.onLoad({ filter: /.*/, namespace: 'lobby-protocol' }, () => {
      const schema = protobuf.loadSync(PROTO_PATH).toJSON();
      return {
        contents: `export const packets = ${JSON.stringify(PACKETS)};\nexport const schema = ${JSON.stringify(schema)};\n`,
        loader: 'js',
        watchFiles: [PROTO_PATH, path.join(__dirname, 'protocol.ts')],
      };
    });
  },
};

/** Bundles web/main.ts with protobufjs into web/dist/app.js and copies the page beside it. Takes well under a second. */
export async function buildWebClient(): Promise<string> {
  // Loaded here, not at the top: the lobby server imports this file, and only a build needs esbuild.
  const esbuild: typeof import('esbuild') = require('esbuild');
  fs.rmSync(STAMP, { force: true });
  await esbuild.build({
    entryPoints: [path.join(WEB_SOURCE_DIR, 'main.ts')],
    outfile: path.join(WEB_BUNDLE_DIR, 'app.js'),
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2020',
    minify: true,
    sourcemap: 'linked',
    plugins: [lobbyProtocol],
    logLevel: 'warning',
  });
  for (const name of STATIC_FILES) fs.copyFileSync(path.join(WEB_SOURCE_DIR, name), path.join(WEB_BUNDLE_DIR, name));
  fs.writeFileSync(STAMP, `${new Date().toISOString()}\n`);
  return WEB_BUNDLE_DIR;
}

/** Builds the web client if it is missing or older than any of its sources; resolves with its directory. */
export async function ensureWebClient(): Promise<string> {
  return isStale() ? buildWebClient() : WEB_BUNDLE_DIR;
}

/** `build-web.ts [--if-stale]`: builds the web client into web/dist/. */
if (require.main === module) {
  const started = performance.now();
  const ifStale = process.argv.includes('--if-stale');
  (ifStale ? ensureWebClient() : buildWebClient()).then(
    (dir) => console.log(`web client in ${path.relative(process.cwd(), dir)}/ (${(performance.now() - started).toFixed(0)} ms)`),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
