{
  "targets": [
    {
      "target_name": "tulle",
      "sources": [
        "src/addon.c",
        "src/blake2s.c",
        "src/dataplane.c",
        "src/loop.c",
        "src/outbound.c",
        "src/inbound.c",
        "src/route-table.c",
        "src/packet.c",
        "src/tun.c",
        "src/csum.c",
        "src/gso.c",
        "src/gro.c",
        "src/addon-offload.c",
        "src/offload-setup.c",
        "src/outbound-offload.c",
        "src/inbound-offload.c",
        "src/micro-bench.c",
        "src/reuseport.c",
        "src/addon-wg.c",
        "src/aead.c",
        "src/aead-direct.c",
        "src/replay.c",
        "src/wg.c",
        "src/wg-data.c",
        "src/sd-notify.c"
      ],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"]
    }
  ]
}
