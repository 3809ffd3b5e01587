/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }],
  },
  testTimeout: 30000,
  // Two workers even on two cores (jest's default there is one): the suites
  // mostly wait on sockets and peers, and every wait is for an event, never
  // a fixed time, so sharing the cores makes them slower, not wrong.
  maxWorkers: 2,
};
