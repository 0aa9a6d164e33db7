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
        "src/group_f32_avx2.cc",
        "src/portable_stubs.cc",
        "src/blocks.cc",
        "src/blocks_avx2.cc",
        "src/blocks_vnni.cc",
        "src/kquants.cc",
        "src/kquants_avx2.cc",
        "src/kquants_lanes_avx2.cc",
        "src/kquants_avx512.cc",
        "src/mmap.cc",
        "src/arm/detect.cc",
        "src/arm/dispatch.cc",
        "src/arm/matmul_f.cc",
        "src/arm/ops.cc",
        "src/arm/kv_neon.cc"
      ],
      "conditions": [
        # arm64 (Linux, macOS): the NEON kernels. The dotprod / i8mm / fp16fml files are built with their -march in the
        # static libraries below (gyp has no per-file flags) and run only when the CPU reports the feature.
        ["target_arch=='arm64'", {
          "sources": [
            "src/arm/quant.cc",
            "src/arm/legacy_neon.cc",
            "src/arm/kquants_neon.cc"
          ],
          "dependencies": ["xv_arm_dotprod", "xv_arm_i8mm", "xv_arm_fhm"]
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
  ],
  "conditions": [
    ["target_arch=='arm64'", {
      "targets": [
        {
          "target_name": "xv_arm_dotprod",
          "type": "static_library",
          "sources": ["src/arm/legacy_dot.cc", "src/arm/kquants_dot.cc", "src/arm/intq_dot.cc"],
          "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-fno-math-errno", "-march=armv8.2-a+dotprod"],
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno", "-march=armv8.2-a+dotprod"]
          }
        },
        {
          "target_name": "xv_arm_i8mm",
          "type": "static_library",
          "sources": ["src/arm/legacy_i8mm.cc", "src/arm/kquants_i8mm.cc", "src/arm/intq_i8mm.cc"],
          "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-fno-math-errno", "-march=armv8.2-a+dotprod+i8mm"],
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno", "-march=armv8.2-a+dotprod+i8mm"]
          }
        },
        {
          "target_name": "xv_arm_fhm",
          "type": "static_library",
          "sources": ["src/arm/matmul_fhm.cc"],
          "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-fno-math-errno", "-march=armv8.2-a+fp16fml"],
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno", "-march=armv8.2-a+fp16fml"]
          }
        }
      ]
    }]
  ]
}
