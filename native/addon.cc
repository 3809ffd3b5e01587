// The addon's one N-API surface. It checks nothing JS has already checked,
// turns the reactor's negative errno results into Errors with a `code`, and
// hands each batch of events to JS in one call.
#include <napi.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "protocol.h"
#include "reactor.h"
#include "relay.h"

namespace ringport {

namespace {

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#define RP_HAVE_STRERRORNAME_NP 1
#else
// Without strerrorname_np (Windows' CRT among others): the values reactors return.
#define RP_ERRNO_NAME(e) {e, #e}
const struct {
  int value;
  const char* name;
} errno_names[] = {
    RP_ERRNO_NAME(EACCES), RP_ERRNO_NAME(EADDRINUSE), RP_ERRNO_NAME(EADDRNOTAVAIL), RP_ERRNO_NAME(EAFNOSUPPORT),
    RP_ERRNO_NAME(EAGAIN), RP_ERRNO_NAME(EALREADY), RP_ERRNO_NAME(EBADF), RP_ERRNO_NAME(ECANCELED),
    RP_ERRNO_NAME(ECONNABORTED), RP_ERRNO_NAME(ECONNREFUSED), RP_ERRNO_NAME(ECONNRESET), RP_ERRNO_NAME(EFAULT),
    RP_ERRNO_NAME(EHOSTUNREACH), RP_ERRNO_NAME(EINPROGRESS), RP_ERRNO_NAME(EINTR), RP_ERRNO_NAME(EINVAL),
    RP_ERRNO_NAME(EIO), RP_ERRNO_NAME(EISCONN), RP_ERRNO_NAME(EMFILE), RP_ERRNO_NAME(EMSGSIZE),
    RP_ERRNO_NAME(ENETDOWN), RP_ERRNO_NAME(ENETUNREACH), RP_ERRNO_NAME(ENOBUFS), RP_ERRNO_NAME(ENOENT),
    RP_ERRNO_NAME(ENOMEM), RP_ERRNO_NAME(ENOPROTOOPT), RP_ERRNO_NAME(ENOSYS), RP_ERRNO_NAME(ENOTCONN),
    RP_ERRNO_NAME(ENOTSOCK), RP_ERRNO_NAME(ENOTSUP), RP_ERRNO_NAME(EOPNOTSUPP), RP_ERRNO_NAME(EPERM),
    RP_ERRNO_NAME(EPIPE), RP_ERRNO_NAME(EPROTONOSUPPORT), RP_ERRNO_NAME(EPROTOTYPE), RP_ERRNO_NAME(ETIMEDOUT),
};
#endif

std::string errno_code(int err) {
#ifdef RP_HAVE_STRERRORNAME_NP
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
#else
  for (const auto& e : errno_names) {
    if (e.value == err) return e.name;
  }
#endif
  return "E" + std::to_string(err);
}

// Throws an Error whose `code` is the errno name (EADDRINUSE, EPERM, ...).
Napi::Value throw_errno(Napi::Env env, const char* what, int result) {
  int err = -result;
  std::string code = errno_code(err);
  // The name too: not every C library describes every socket errno (Windows' says "Unknown error").
  Napi::Error error = Napi::Error::New(env, std::string(what) + ": " + std::strerror(err) + " (" + code + ")");
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

template <typename T>
T* data_of(const Napi::TypedArray& array) {
  return reinterpret_cast<T*>(static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset());
}

class Reactor : public Napi::ObjectWrap<Reactor> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Reactor",
                       {
                           InstanceMethod<&Reactor::Listen>("listen"),
                           InstanceMethod<&Reactor::CloseListener>("closeListener"),
                           InstanceMethod<&Reactor::Connect>("connect"),
                           InstanceMethod<&Reactor::Flush>("flush"),
                           InstanceMethod<&Reactor::Peer>("peer"),
                           InstanceMethod<&Reactor::Unsent>("unsent"),
                           InstanceMethod<&Reactor::Stats>("stats"),
                           InstanceMethod<&Reactor::Destroy>("destroy"),
                       });
  }

  // new Reactor(mechanism, options, { events, commands, arena, control, queued }, onBatch)
  explicit Reactor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Reactor>(info) {
    Napi::Env env = info.Env();
    std::string mechanism = info[0].As<Napi::String>().Utf8Value();
    Napi::Object options = info[1].As<Napi::Object>();
    Napi::Object shared = info[2].As<Napi::Object>();
    on_batch_ = Napi::Persistent(info[3].As<Napi::Function>());
    async_context_ = std::make_unique<Napi::AsyncContext>(env, "ringport:batch");

    reactor_options opts;
    auto u32 = [&](const char* key, uint32_t fallback) {
      Napi::Value v = options.Get(key);
      return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : fallback;
    };
    opts.queue_depth = u32("queueDepth", opts.queue_depth);
    opts.max_connections = u32("maxConnections", opts.max_connections);
    opts.recv_buffer_bytes = u32("recvBufferBytes", opts.recv_buffer_bytes);
    opts.recv_buffers_initial = u32("recvBuffersInitial", opts.recv_buffers_initial);
    opts.recv_buffers_max = u32("recvBuffersMax", opts.recv_buffers_max);

    Napi::Int32Array events = shared.Get("events").As<Napi::Int32Array>();
    Napi::Int32Array commands = shared.Get("commands").As<Napi::Int32Array>();
    Napi::Uint8Array arena = shared.Get("arena").As<Napi::Uint8Array>();
    Napi::Int32Array control = shared.Get("control").As<Napi::Int32Array>();
    Napi::Uint32Array queued = shared.Get("queued").As<Napi::Uint32Array>();
    // Holding the arrays keeps their memory where the reactor expects it.
    shared_ref_ = Napi::Persistent(shared);

    reactor_shared mem;
    mem.events = data_of<int32_t>(events);
    mem.event_capacity = static_cast<uint32_t>(events.ElementLength() / RP_EVENT_INTS);
    mem.commands = data_of<int32_t>(commands);
    mem.command_capacity = static_cast<uint32_t>(commands.ElementLength());
    mem.arena = data_of<uint8_t>(arena);
    mem.arena_capacity = static_cast<uint32_t>(arena.ElementLength());
    mem.control = data_of<int32_t>(control);
    mem.queued = data_of<uint32_t>(queued);
    if (queued.ElementLength() < opts.max_connections) opts.max_connections = static_cast<uint32_t>(queued.ElementLength());
    mem.deliver = &Reactor::Deliver;
    mem.context = this;

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
      Napi::Error::New(env, "no event loop").ThrowAsJavaScriptException();
      return;
    }
    int ret = reactor_create(loop, mechanism.c_str(), opts, mem, &reactor_);
    if (ret < 0) throw_errno(env, (mechanism + " reactor").c_str(), ret);
  }

  ~Reactor() override { Release(); }

 private:
  // Plain Node-API calls, each status checked, rather than node-addon-api's
  // wrappers: in a worker thread being terminated every call into JS fails,
  // and the wrappers answer a failure by throwing an Error, which cannot be
  // thrown either (NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS, in CMakeLists.txt,
  // keeps that from aborting the process in the methods below). Here the
  // batch is dropped instead: the thread is going away, and its connections
  // with it.
  static void Deliver(void* context, uint32_t count, const uint8_t* data, size_t length) {
    auto* self = static_cast<Reactor*>(context);
    napi_env env = self->Env();
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value args[2];
    napi_value receiver = nullptr;
    napi_value callback = nullptr;
    bool ready = napi_get_reference_value(env, static_cast<napi_ref>(*self), &receiver) == napi_ok &&
                 napi_get_reference_value(env, static_cast<napi_ref>(self->on_batch_), &callback) == napi_ok &&
                 receiver != nullptr && callback != nullptr && napi_create_uint32(env, count, &args[0]) == napi_ok;
    if (ready) {
      ready = length > 0 ? napi_create_buffer_copy(env, length, data, nullptr, &args[1]) == napi_ok
                         : napi_get_undefined(env, &args[1]) == napi_ok;
    }
    napi_value result;
    // MakeCallback: promise jobs and nextTicks queued by handlers run when it returns.
    if (ready && napi_make_callback(env, *self->async_context_, receiver, callback, 2, args, &result) != napi_ok) {
      ReportThrown(env);
    }
    napi_close_handle_scope(env, scope);
  }

  // A throwing batch handler is a bug in JS: report it as uncaught, like any
  // callback's. A terminating thread leaves nothing to report.
  static void ReportThrown(napi_env env) {
    bool pending = false;
    napi_value error;
    napi_valuetype type;
    if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return;
    if (napi_get_and_clear_last_exception(env, &error) != napi_ok || error == nullptr) return;
    if (napi_typeof(env, error, &type) != napi_ok || type == napi_undefined) return;
    napi_fatal_exception(env, error);
  }

  bool Live(Napi::Env env) {
    if (reactor_ != nullptr) return true;
    Napi::Error error = Napi::Error::New(env, "reactor is destroyed");
    error.Set("code", Napi::String::New(env, "ERR_RINGPORT_DESTROYED"));
    error.ThrowAsJavaScriptException();
    return false;
  }

  static water_marks MarksOf(const Napi::CallbackInfo& info, size_t at) {
    return water_marks{info[at].As<Napi::Number>().Uint32Value(), info[at + 1].As<Napi::Number>().Uint32Value()};
  }

  // listen(host, port, backlog, reusePort, highWaterMark, lowWaterMark[, relay]) -> [listenerId, boundPort]
  // relay: [lengthBytes, bigEndian, maxFrameBytes, Uint16Array of packet ids] (see relay.h)
  Napi::Value Listen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    std::string host = info[0].As<Napi::String>().Utf8Value();
    listen_request request{host.c_str(), info[1].As<Napi::Number>().Int32Value(),
                           info[2].As<Napi::Number>().Int32Value(), info[3].As<Napi::Boolean>().Value(),
                           MarksOf(info, 4)};
    relay_spec spec;
    if (info.Length() > 6 && info[6].IsArray()) {
      Napi::Array relay = info[6].As<Napi::Array>();
      spec.length_bytes = static_cast<uint8_t>(relay.Get(0u).As<Napi::Number>().Uint32Value());
      spec.big_endian = relay.Get(1u).As<Napi::Boolean>().Value();
      spec.max_frame_bytes = std::min(relay.Get(2u).As<Napi::Number>().Uint32Value(), RELAY_MAX_FRAME_BYTES);
      Napi::Uint16Array ids = relay.Get(3u).As<Napi::Uint16Array>();
      for (size_t k = 0; k < ids.ElementLength(); k++) spec.ids.set(ids[k]);
      if (spec.length_bytes != 2 && spec.length_bytes != 4) return throw_errno(env, "listen", -EINVAL);
      request.relay = &spec;
    }
    int id = 0, bound = 0;
    int ret = reactor_listen(reactor_, request, &id, &bound);
    if (ret < 0) return throw_errno(env, "listen", ret);
    Napi::Array result = Napi::Array::New(env, 2);
    result.Set(0u, Napi::Number::New(env, id));
    result.Set(1u, Napi::Number::New(env, bound));
    return result;
  }

  Napi::Value CloseListener(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    int ret = reactor_close_listener(reactor_, info[0].As<Napi::Number>().Int32Value());
    if (ret < 0) return throw_errno(env, "closeListener", ret);
    return env.Undefined();
  }

  // connect(ip, port, highWaterMark, lowWaterMark) -> connection id (gen * RP_SLOT_LIMIT + slot)
  Napi::Value Connect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    std::string ip = info[0].As<Napi::String>().Utf8Value();
    uint32_t slot = 0, gen = 0;
    int ret = reactor_connect(reactor_, ip.c_str(), info[1].As<Napi::Number>().Int32Value(), MarksOf(info, 2), &slot,
                              &gen);
    if (ret < 0) return throw_errno(env, "connect", ret);
    return Napi::Number::New(env, static_cast<double>(gen) * RP_SLOT_LIMIT + slot);
  }

  // flush(early) -- early: more commands of this tick follow (see reactor_flush)
  Napi::Value Flush(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    bool early = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
    int ret = reactor_flush(reactor_, !early);
    if (ret < 0) return throw_errno(env, "flush", ret);
    return env.Undefined();
  }

  // unsent(slot, gen) -> [bytes, kernelCounted] or undefined once the connection is gone
  Napi::Value Unsent(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    uint64_t bytes = 0;
    bool kernel_counted = false;
    int ret = reactor_unsent(reactor_, info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::Number>().Uint32Value(),
                             &bytes, &kernel_counted);
    if (ret < 0) return env.Undefined();
    Napi::Array result = Napi::Array::New(env, 2);
    result.Set(0u, Napi::Number::New(env, static_cast<double>(bytes)));
    result.Set(1u, Napi::Boolean::New(env, kernel_counted));
    return result;
  }

  // peer(slot, gen) -> [host, port] or undefined
  Napi::Value Peer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    char host[64];
    int port = 0;
    int ret = reactor_peer(reactor_, info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::Number>().Uint32Value(),
                           host, sizeof(host), &port);
    if (ret < 0) return env.Undefined();
    Napi::Array result = Napi::Array::New(env, 2);
    result.Set(0u, Napi::String::New(env, host));
    result.Set(1u, Napi::Number::New(env, port));
    return result;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    reactor_stats s;
    reactor_get_stats(reactor_, &s);
    Napi::Object o = Napi::Object::New(env);
    auto put = [&](const char* key, uint64_t value) { o.Set(key, Napi::Number::New(env, static_cast<double>(value))); };
    put("connections", s.connections);
    put("listeners", s.listeners);
    put("bytesIn", s.bytes_in);
    put("bytesOut", s.bytes_out);
    put("reads", s.reads);
    put("sends", s.sends);
    put("queuedBytes", s.queued_bytes);
    put("sendBufferBytes", s.send_buffer_bytes);
    put("batches", s.batches);
    put("submits", s.submits);
    put("wakeups", s.wakeups);
    put("completions", s.completions);
    put("recvBuffers", s.recv_buffers);
    put("enobufs", s.enobufs);
    return o;
  }

  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  void Release() {
    if (reactor_ == nullptr) return;
    reactor_destroy(reactor_);
    reactor_ = nullptr;
  }

  reactor* reactor_ = nullptr;
  Napi::FunctionReference on_batch_;
  Napi::ObjectReference shared_ref_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
};

// errnoName(errno) -> "ECONNRESET": the one errno table. The reactors produce
// the numbers, so JS names them through here rather than through a table of
// its own (os.constants.errno calls 95 ENOTSUP where glibc says EOPNOTSUPP).
// Either sign is accepted, as results are negative.
Napi::Value ErrnoName(const Napi::CallbackInfo& info) {
  int err = info[0].As<Napi::Number>().Int32Value();
  return Napi::String::New(info.Env(), errno_code(err < 0 ? -err : err));
}

// probe(mechanism) -> 0 when a reactor of that mechanism can run here, else
// -errno (EPERM, ENOSYS, ...)
Napi::Value Probe(const Napi::CallbackInfo& info) {
  std::string mechanism = info[0].As<Napi::String>().Utf8Value();
  return Napi::Number::New(info.Env(), reactor_probe(mechanism.c_str()));
}

// The mechanisms this build has, in the order `auto` tries them.
Napi::Array Mechanisms(Napi::Env env) {
  const char* names[8];
  size_t n = reactor_mechanisms(names, 8);
  Napi::Array list = Napi::Array::New(env, n);
  for (size_t i = 0; i < n && i < 8; i++) list.Set(static_cast<uint32_t>(i), Napi::String::New(env, names[i]));
  return list;
}

Napi::Object Protocol(Napi::Env env) {
  Napi::Object p = Napi::Object::New(env);
  auto put = [&](const char* key, int64_t value) { p.Set(key, Napi::Number::New(env, static_cast<double>(value))); };
  put("SLOT_LIMIT", RP_SLOT_LIMIT);
  put("GEN_MASK", RP_GEN_MASK);
  put("EVENT_INTS", RP_EVENT_INTS);
  put("EV_ACCEPT", RP_EV_ACCEPT);
  put("EV_CONNECT", RP_EV_CONNECT);
  put("EV_DATA", RP_EV_DATA);
  put("EV_DRAIN", RP_EV_DRAIN);
  put("EV_CLOSE", RP_EV_CLOSE);
  put("EV_RELAYED", RP_EV_RELAYED);
  put("CLOSE_PEER", RP_CLOSE_PEER);
  put("CLOSE_ERROR", RP_CLOSE_ERROR);
  put("CLOSE_LOCAL", RP_CLOSE_LOCAL);
  put("CLOSE_BACKPRESSURE", RP_CLOSE_BACKPRESSURE);
  put("CMD_SEND", RP_CMD_SEND);
  put("CMD_SEND_MANY", RP_CMD_SEND_MANY);
  put("CMD_CLOSE", RP_CMD_CLOSE);
  put("CMD_GROUP", RP_CMD_GROUP);
  put("CONTROL_INTS", RP_CONTROL_INTS);
  put("CONTROL_COMMAND_INTS", RP_CONTROL_COMMAND_INTS);
  put("CONTROL_ARENA_BYTES", RP_CONTROL_ARENA_BYTES);
  return p;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Reactor", Reactor::Define(env));
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("errnoName", Napi::Function::New(env, ErrnoName));
  exports.Set("protocol", Protocol(env));
  exports.Set("mechanisms", Mechanisms(env));
  return exports;
}

}  // namespace

}  // namespace ringport

static Napi::Object InitRingport(Napi::Env env, Napi::Object exports) { return ringport::Init(env, exports); }

NODE_API_MODULE(ringport, InitRingport)
