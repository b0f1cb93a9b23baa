# Installs agentwire as a CMake package: the libraries (exported as
# agentwire::…, with agentwire::agentwire the one to link), the public
# headers under include/agentwire/, the `agentwire` executable, and
# agentwireConfig.cmake with its version file, which find the same
# dependencies (the CAF find module ships with it).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(AGENTWIRE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/agentwire)

set_target_properties(aw_messages PROPERTIES EXPORT_NAME messages)
set_target_properties(aw_actors PROPERTIES EXPORT_NAME actors)
set_target_properties(aw_agents PROPERTIES EXPORT_NAME agents)
set_target_properties(aw_beast_impl PROPERTIES EXPORT_NAME beast_impl)
set_target_properties(aw_transport PROPERTIES EXPORT_NAME transport)

install(TARGETS aw_messages aw_actors aw_agents aw_beast_impl aw_transport agentwire_library
        EXPORT agentwireTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/agentwire)
install(TARGETS agentwire RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The public API: what an embedding application includes, and what those
# headers include. The runtime's internal vocabulary (actor_messages.hpp and
# the actors that speak it) stays out.
set(AGENTWIRE_PUBLIC_HEADERS
  messages/protocol.hpp messages/jwt.hpp messages/jwt_keys.hpp
  actors/agent.hpp actors/tool.hpp actors/run_request.hpp actors/settings.hpp
  actors/metrics.hpp actors/rate_limiter.hpp actors/log.hpp actors/runtime.hpp
  actors/directory.hpp actors/history_store.hpp actors/router.hpp actors/route.hpp
  agents/builtin.hpp agents/builtin_tools.hpp agents/demo_agent.hpp
  transport/server.hpp transport/service.hpp)
foreach(h ${AGENTWIRE_PUBLIC_HEADERS})
  get_filename_component(dir ${h} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/${h}
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/agentwire/${dir})
endforeach()

install(EXPORT agentwireTargets NAMESPACE agentwire:: DESTINATION ${AGENTWIRE_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/agentwireConfig.cmake.in
  ${PROJECT_BINARY_DIR}/agentwireConfig.cmake INSTALL_DESTINATION ${AGENTWIRE_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/agentwireConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/agentwireConfig.cmake
              ${PROJECT_BINARY_DIR}/agentwireConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/FindCAF.cmake
        DESTINATION ${AGENTWIRE_CMAKE_DIR})
