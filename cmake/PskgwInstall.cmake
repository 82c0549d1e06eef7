# Installation and Debian packages.
#
#   cmake --install build [--prefix /usr]       what `make install` would do
#   (cd build && cpack -G DEB)                  pskgw_<version>_<arch>.deb (the gateway) and
#                                               pskgw-tools_<version>_<arch>.deb (pskgw-sim,
#                                               pskgw-devsim: the simulators, for test benches)
#
# The gateway package holds /usr/bin/pskgw, the units (pskgw.service, pskgw@.service), the
# system user (sysusers.d) and every directory the units and the examples use (tmpfiles.d), the
# man pages pskgw(8) and pskgw.conf(5), the Markdown docs the units' Documentation= names and
# the example configurations under /usr/share/doc/pskgw/examples. Its postinst creates the user
# and the directories; nothing is enabled or started.
#
# The units name the binary (and the man pages their version) by its installed path: they are written at install time from
# systemd/*.service.in with the prefix of that install (CPack installs with /usr), so a package
# and a `cmake --install --prefix /opt/pskgw` both get units that match their binary.
include(GNUInstallDirs)

set(_unit_out "${PROJECT_BINARY_DIR}/install-units")
set(_unit_src "${PROJECT_SOURCE_DIR}/systemd")
install(CODE "
  set(PSKGW_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  set(PSKGW_DOCDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATAROOTDIR}/doc/pskgw\")
  set(VERSION \"${PROJECT_VERSION}\")
  foreach(u pskgw.service pskgw@.service)
    configure_file(\"${_unit_src}/\${u}.in\" \"${_unit_out}/\${u}\" @ONLY)
  endforeach()
  foreach(m pskgw.8 pskgw.conf.5)
    configure_file(\"${PROJECT_SOURCE_DIR}/docs/man/\${m}\" \"${_unit_out}/\${m}\" @ONLY)
  endforeach()
" COMPONENT gateway)

install(TARGETS pskgw RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT gateway)
install(FILES "${_unit_out}/pskgw.service" "${_unit_out}/pskgw@.service"
        DESTINATION lib/systemd/system COMPONENT gateway)
install(FILES "${_unit_src}/pskgw.sysusers" DESTINATION lib/sysusers.d RENAME pskgw.conf
        COMPONENT gateway)
install(FILES "${_unit_src}/pskgw.tmpfiles" DESTINATION lib/tmpfiles.d RENAME pskgw.conf
        COMPONENT gateway)
install(FILES "${_unit_out}/pskgw.8"
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT gateway)
install(FILES "${_unit_out}/pskgw.conf.5"
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man5 COMPONENT gateway)
install(FILES "${PROJECT_SOURCE_DIR}/README.md" "${PROJECT_SOURCE_DIR}/docs/OPERATIONS.md"
              "${PROJECT_SOURCE_DIR}/docs/CONFIG.md" "${PROJECT_SOURCE_DIR}/docs/SECURITY.md"
              "${PROJECT_SOURCE_DIR}/docs/ARCHITECTURE.md" "${PROJECT_SOURCE_DIR}/docs/WOLFSSL.md"
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/pskgw COMPONENT gateway)
install(FILES "${PROJECT_SOURCE_DIR}/examples/production-redis.conf"
              "${PROJECT_SOURCE_DIR}/examples/multi-sink.conf"
              "${PROJECT_SOURCE_DIR}/examples/demo.conf"
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/pskgw/examples COMPONENT gateway)
install(FILES "${PROJECT_SOURCE_DIR}/examples/pskgw.service.d/credentials.conf"
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/pskgw/examples/pskgw.service.d
        COMPONENT gateway)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/contrib/"
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/pskgw/contrib COMPONENT gateway
        PATTERN "tests" EXCLUDE)
install(TARGETS pskgw-sim pskgw-devsim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT tools)

set(CPACK_PACKAGE_NAME pskgw)
set(CPACK_PACKAGE_VENDOR "pskgw")
set(CPACK_PACKAGE_CONTACT "pskgw maintainers <pskgw@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "PSK (D)TLS gateway for u-blox root-of-trust devices")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL gateway tools)
set(CPACK_DEBIAN_GATEWAY_PACKAGE_NAME pskgw)
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME pskgw-tools)
set(CPACK_DEBIAN_GATEWAY_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_TOOLS_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# dpkg-shlibdeps (dpkg-dev) turns the linked libraries into Depends: (libuv1, libcurl4, ...).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_GATEWAY_PACKAGE_DEPENDS "systemd")
set(CPACK_DEBIAN_GATEWAY_DESCRIPTION
    "PSK (D)TLS gateway for u-blox root-of-trust devices\n Terminates the PSK DTLS/TLS sessions of u-blox cellular modules, resolves their\n identities through the u-blox security service and forwards decrypted messages.")
set(CPACK_DEBIAN_TOOLS_DESCRIPTION
    "simulators for pskgw test benches\n pskgw-sim (security-service simulator) and pskgw-devsim (simulated device fleet).")
set(CPACK_DEBIAN_GATEWAY_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/cmake/deb/postinst;${PROJECT_SOURCE_DIR}/cmake/deb/postrm")
set(CPACK_DEBIAN_GATEWAY_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
