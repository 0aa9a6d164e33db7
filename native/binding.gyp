{
  "targets": [
    {
      "target_name": "xverse_native",
      "sources": [
        "src/addon.cc",
        "src/pool.cc",
        "src/ops.cc",
        "src/kv.cc",
        "src/matmul_scalar.cc",
        "src/matmul_avx2.cc",
        "src/matmul_avx512.cc",
        "src/matvec_vnni.cc",
        "src/matmul_amx.cc",
        "src/repack.cc",
        "src/matmul_q4_avx2.cc",
        "src/group_zp.cc",
        "src/portable_stubs.cc",
        "src/blocks.cc",
        "src/blocks_avx2.cc",
        "src/blocks_vnni.cc",
        "src/kquants.cc",
        "src/kquants_avx2.cc",
        "src/kquants_avx512.cc",
        "src/mmap.cc",
        "src/arm/detect.cc",
        "src/arm/dispatch.cc",
        "src/arm/matmul_f.cc",
        "src/arm/ops.cc",
        "src/arm/kv_neon.cc"
      ],
      "conditions": [
        # arm64 (Linux, macOS): the NEON kernels per level. Each dotprod / i8mm file enables its feature for its
        # own code with a target pragma (gyp has no per-file flags), and runs only when the CPU reports it.
        ["target_arch=='arm64'", {
          "sources": [
            "src/arm/quant.cc",
            "src/arm/legacy_neon.cc",
            "src/arm/legacy_dot.cc",
            "src/arm/legacy_i8mm.cc",
            "src/arm/kquants_neon.cc",
            "src/arm/kquants_dot.cc"
          ]
        }]
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O3", "-fno-math-errno", "-Wall", "-Wno-unused-function", "-Wno-uninitialized"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17"
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 1 }
      }
    }
  ]
}
