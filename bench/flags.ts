/**
 * `--name value` / `--name=value` flags for the bench scripts. Every flag has a
 * default, so an unknown flag is a typo and stops the run rather than being ignored.
 */
export function parseFlags<T extends Record<string, string>>(argv: readonly string[], defaults: T): T {
  const flags: Record<string, string> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (match === null || !(match[1] in defaults)) {
      throw new Error(`unknown argument '${argv[i]}'; flags: ${Object.keys(defaults).map((k) => `--${k}`).join(' ')}`);
    }
    const value = match[2] ?? argv[++i];
    if (value === undefined || value.startsWith('--')) throw new Error(`--${match[1]} needs a value`);
    flags[match[1]] = value;
  }
  return flags as T;
}

/** Reads a flag as a whole number of at least `min`. */
export function intFlag(flags: Record<string, string>, name: string, min: number): number {
  const value = Number(flags[name]);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be an integer >= ${min}, got '${flags[name]}'`);
  return value;
}
