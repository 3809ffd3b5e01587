// Jest for Windows node.exe under Wine (scripts/test-win.sh). The TypeScript
// is only transpiled, file by file: the type check has already run on Linux
// (`npx tsc -p tsconfig.test.json`), and under Wine it would cost minutes.
const path = require('node:path');
const base = require('../../jest.config.js');

module.exports = {
  ...base,
  rootDir: path.join(__dirname, '..', '..'),
  transform: {
    '^.+\\.ts$': [
      'ts-jest',
      { tsconfig: { target: 'ES2022', module: 'commonjs', esModuleInterop: true, isolatedModules: true, sourceMap: true } },
    ],
  },
};
