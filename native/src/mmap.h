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

}  // namespace xv
