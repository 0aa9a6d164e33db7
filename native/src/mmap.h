// File mapping for zero-copy weights (mmap.cc): the bindings addon.cc registers. No kernels here.
#pragma once
#include <napi.h>

namespace xv {

// mapFile(path, offset, length) → ArrayBuffer over a read-only private mapping of that byte range of the file
// (offset a multiple of the page size; undefined where the platform has no mmap, so the caller reads the file
// instead). Unmapped when the ArrayBuffer is garbage-collected. A range, not the whole file: one ArrayBuffer
// may not exceed 4 GiB in Node 20, so callers map large files as several windows.
Napi::Value MapFile(const Napi::CallbackInfo& info);
// populate(buffer, offset, length): faults that byte range of a mapping in now (reads it from disk when it is
// not in the page cache), so loading pays for the I/O and the first token does not.
Napi::Value Populate(const Napi::CallbackInfo& info);
// release(buffer, offset, length): drops the whole pages inside that range of a mapping from this process (they
// stay in the page cache, and read back unchanged if touched again: the mapping is never written). For tensors
// that were copied (GGUF q/k rows re-ordered), so the file's copy does not count twice.
Napi::Value Release(const Napi::CallbackInfo& info);

}  // namespace xv
