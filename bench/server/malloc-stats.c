/*
 * glibc's allocator, seen from the server under test, for the memory
 * workloads (`conns`, `ws-conns`). A tiny N-API addon compiled by the bench
 * (bench/loadgen.ts) into bench/.build/malloc-stats.node.
 *
 * Why: RSS growth alone under-counts native memory. After startup the
 * allocator holds tens of MiB of free chunks whose pages are still resident
 * (ts-node's compiling, module loading); allocations for new connections are
 * served from them without RSS moving. uWebSockets.js's 10,000 sockets took
 * 6.9 MB of malloc'd memory while RSS grew by 0.3 MB. `trim()` gives those
 * free pages back first (malloc_trim(0): MADV_DONTNEED on free pages in every
 * arena), so memory reused later is faulted in again and shows in RSS; and
 * `stats()` reads what is in use (mallinfo2: arena bytes in use plus mmapped
 * chunks), the native heap's own count.
 */
#include <malloc.h>
#include <node_api.h>

static napi_value number(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

/* trim(): returns the bytes malloc has in use afterwards (arenas + mmapped chunks). */
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  malloc_trim(0);
  struct mallinfo2 m = mallinfo2();
  return number(env, (double)(m.uordblks + m.hblkhd));
}

/* stats(): { inUse, mmapped, free } in bytes, summed over every arena. */
static napi_value stats(napi_env env, napi_callback_info info) {
  (void)info;
  struct mallinfo2 m = mallinfo2();
  napi_value obj;
  napi_create_object(env, &obj);
  napi_set_named_property(env, obj, "inUse", number(env, (double)m.uordblks));
  napi_set_named_property(env, obj, "mmapped", number(env, (double)m.hblkhd));
  napi_set_named_property(env, obj, "free", number(env, (double)m.fordblks));
  return obj;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  napi_create_function(env, "stats", NAPI_AUTO_LENGTH, stats, NULL, &fn);
  napi_set_named_property(env, exports, "stats", fn);
  return exports;
}
