# The UDP (DTLS) and TCP (TLS) listeners of issue 5, included by gateway/CMakeLists.txt.
target_sources(pskgw_gateway PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/listen_api.c
  ${CMAKE_CURRENT_LIST_DIR}/listen_lsess.c
  ${CMAKE_CURRENT_LIST_DIR}/listen_sessions.c
  ${CMAKE_CURRENT_LIST_DIR}/hibernate.c
  ${CMAKE_CURRENT_LIST_DIR}/listen_sessredis.c
  ${CMAKE_CURRENT_LIST_DIR}/listen_limits.c
  ${CMAKE_CURRENT_LIST_DIR}/listen_reload.c
  ${CMAKE_CURRENT_LIST_DIR}/listen_admit.c
  ${CMAKE_CURRENT_LIST_DIR}/lookup_admit.c
  ${CMAKE_CURRENT_LIST_DIR}/udp_listener.c
  ${CMAKE_CURRENT_LIST_DIR}/cid_steer.c
  ${CMAKE_CURRENT_LIST_DIR}/listen_cid.c
  ${CMAKE_CURRENT_LIST_DIR}/listen_names.c
  ${CMAKE_CURRENT_LIST_DIR}/tcp_listener.c
  ${CMAKE_CURRENT_LIST_DIR}/forward.c
  ${CMAKE_CURRENT_LIST_DIR}/forward_tcp.c
  ${CMAKE_CURRENT_LIST_DIR}/forward_udp.c)
target_link_libraries(pskgw_gateway PUBLIC pskgw_dtls pskgw::uv)
