{
  "targets": [
    {
      "target_name": "grove_native",
      "sources": [
        "src/error.c",
        "src/util.c",
        "src/cgroup.c",
        "src/container.c",
        "src/seccomp.c",
        "src/shim_spawn.c",
        "src/addon.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-std=gnu++17", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags!": ["-fno-exceptions"]
    },
    {
      "target_name": "grove-shim",
      "type": "executable",
      "sources": ["src/error.c", "src/util.c", "src/cgroup.c", "src/container.c", "src/seccomp.c", "src/exec.c", "src/shim.c"],
      "defines": ["_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-Os"],
      "cflags_c": ["-std=gnu11"],
      "ldflags": ["-static"]
    },
    {
      "target_name": "grove-runtime",
      "type": "executable",
      "sources": [
        "src/error.c",
        "src/util.c",
        "src/cgroup.c",
        "src/container.c",
        "src/seccomp.c",
        "src/json.c",
        "src/shim_spawn.c",
        "src/oci.c"
      ],
      "defines": ["_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-Wno-format-truncation", "-Os"],
      "cflags_c": ["-std=gnu11"],
      "ldflags": ["-static"]
    }
  ]
}
