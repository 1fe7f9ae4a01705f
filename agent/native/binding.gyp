{
  "targets": [
    {
      "target_name": "grove-seccomp-compile",
      "type": "executable",
      "sources": ["seccomp/compile.c", "seccomp/profile.c", "src/json.c"],
      "defines": ["_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_c": ["-std=gnu11"],
      "libraries": ["-lseccomp"]
    },
    {
      "target_name": "grove-seccomp-profile",
      "type": "none",
      "dependencies": ["grove-seccomp-compile"],
      "actions": [
        {
          "action_name": "compile_seccomp_profile",
          "inputs": ["seccomp/default.json", "<(PRODUCT_DIR)/grove-seccomp-compile"],
          "outputs": ["<(SHARED_INTERMEDIATE_DIR)/seccomp_profile.c"],
          "action": ["<(PRODUCT_DIR)/grove-seccomp-compile", "seccomp/default.json", "<(SHARED_INTERMEDIATE_DIR)/seccomp_profile.c"]
        }
      ]
    },
    {
      "target_name": "grove_native",
      "dependencies": ["grove-seccomp-profile"],
      "sources": [
        "src/error.c",
        "src/util.c",
        "src/cgroup.c",
        "src/container.c",
        "src/oci_attrs.c",
        "src/hooks.c",
        "src/seccomp.c",
        "<(SHARED_INTERMEDIATE_DIR)/seccomp_profile.c",
        "src/shim_spawn.c",
        "src/json.c",
        "src/oci_config.c",
        "src/oci_resources.c",
        "src/netns.c",
        "src/addon.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "src"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-std=gnu++17", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags!": ["-fno-exceptions"]
    },
    {
      "target_name": "grove_bench",
      "dependencies": ["grove-seccomp-profile"],
      "sources": [
        "src/error.c",
        "src/util.c",
        "src/cgroup.c",
        "src/container.c",
        "src/oci_attrs.c",
        "src/hooks.c",
        "src/seccomp.c",
        "<(SHARED_INTERMEDIATE_DIR)/seccomp_profile.c",
        "src/bench_addon.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "src"],
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
      "dependencies": ["grove-seccomp-profile"],
      "sources": [
        "src/error.c",
        "src/util.c",
        "src/cgroup.c",
        "src/container.c",
        "src/oci_attrs.c",
        "src/hooks.c",
        "src/seccomp.c",
        "<(SHARED_INTERMEDIATE_DIR)/seccomp_profile.c",
        "src/shim_protocol.c",
        "src/exec.c",
        "src/shim_runtime.c",
        "src/shim.c"
      ],
      "include_dirs": ["src"],
      "defines": ["_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-Os"],
      "cflags_c": ["-std=gnu11"],
      "ldflags": ["-static"]
    },
    {
      "target_name": "grove-profile-compiler",
      "type": "static_library",
      "sources": ["seccomp/profile.c"],
      "defines": ["_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-Os"],
      "cflags_c": ["-std=gnu11"]
    },
    {
      "target_name": "grove-runtime",
      "type": "executable",
      "dependencies": ["grove-seccomp-profile", "grove-profile-compiler"],
      "sources": [
        "src/error.c",
        "src/util.c",
        "src/cgroup.c",
        "src/container.c",
        "src/oci_attrs.c",
        "src/hooks.c",
        "src/seccomp.c",
        "<(SHARED_INTERMEDIATE_DIR)/seccomp_profile.c",
        "src/json.c",
        "src/shim_spawn.c",
        "src/shim_protocol.c",
        "src/oci_config.c",
        "src/oci_resources.c",
        "src/oci_seccomp.c",
        "src/oci_reaped.c",
        "src/oci_cgroup.c",
        "src/oci_console.c",
        "src/oci.c"
      ],
      "include_dirs": ["src"],
      "defines": ["_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-Wno-format-truncation", "-Os"],
      "cflags_c": ["-std=gnu11"],
      "ldflags": ["-static"],
      "libraries": ["-lseccomp"]
    }
  ]
}
