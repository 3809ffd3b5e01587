/**
 * The environment a test's Chromium runs in: this process's, without
 * LD_PRELOAD. The sanitizer run (scripts/test-sanitized.sh) preloads ASan
 * into node, and Chromium, which is not built for it, hangs at start with
 * it preloaded.
 */
export function chromiumEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (value !== undefined && name !== 'LD_PRELOAD') env[name] = value;
  return env;
}
