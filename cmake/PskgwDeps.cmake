# External dependencies: the project's wolfSSL profile (static, from a local prefix) and Debian's
# -dev packages through pkg-config. Each becomes an imported target used by the modules.
find_package(PkgConfig REQUIRED)

# The prefix is usually the .deps/wolfssl link to a build named by its profile and version
# (scripts/build-wolfssl): use the directory it points to, so that a new wolfSSL build changes
# the include path and the archive's path, and every object is rebuilt against its headers
# (a stale object compiled against another options.h fails at run time).
get_filename_component(_wolf_prefix "${PSKGW_WOLFSSL_PREFIX}" REALPATH)
set(_wolf_lib "${_wolf_prefix}/lib/libwolfssl.a")
if(NOT EXISTS "${_wolf_lib}")
  message(FATAL_ERROR
    "gateway-profile wolfSSL not found at ${PSKGW_WOLFSSL_PREFIX}.\n"
    "Run scripts/build-wolfssl (scripts/test and scripts/demo run it for you).")
endif()
# Static archive: the system's libwolfssl can never be picked up by mistake.
add_library(pskgw::wolfssl STATIC IMPORTED GLOBAL)
set_target_properties(pskgw::wolfssl PROPERTIES
  IMPORTED_LOCATION "${_wolf_lib}"
  INTERFACE_INCLUDE_DIRECTORIES "${_wolf_prefix}/include"
  # pskgw_wolfmem (dtls/wolfmem.c): the allocator functions a profile with XMALLOC_USER calls.
  INTERFACE_LINK_LIBRARIES "pskgw_wolfmem;m")

foreach(dep
    "uv:libuv" "curl:libcurl" "hiredis:hiredis" "config:libconfig" "jansson:jansson"
    "mhd:libmicrohttpd" "systemd:libsystemd" "mosquitto:libmosquitto" "rdkafka:rdkafka"
    "criterion:criterion" "crypto:libcrypto" "ssl:libssl")
  string(REPLACE ":" ";" _pair "${dep}")
  list(GET _pair 0 _name)
  list(GET _pair 1 _mod)
  pkg_check_modules(PC_${_name} REQUIRED IMPORTED_TARGET GLOBAL ${_mod})
  add_library(pskgw::${_name} ALIAS PkgConfig::PC_${_name})
endforeach()
