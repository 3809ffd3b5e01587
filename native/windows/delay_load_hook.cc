// The addon imports Node-API and libuv from "node.exe" through a delay-load
// import library. A host may have any other name (a renamed node.exe, an
// application embedding Node), so when the loader is about to look for
// node.exe this hook answers with the running executable instead. It is
// node-gyp's win_delay_load_hook, for MinGW-w64's delay-load helper, which
// calls the same hook.
#include <windows.h>

#include <delayimp.h>

namespace {

FARPROC WINAPI load_exe_hook(unsigned event, PDelayLoadInfo info) {
  if (event != dliNotePreLoadLibrary || lstrcmpiA(info->szDll, "node.exe") != 0) return nullptr;
  return reinterpret_cast<FARPROC>(GetModuleHandleW(nullptr));
}

}  // namespace

extern "C" {
PfnDliHook __pfnDliNotifyHook2 = load_exe_hook;
}
