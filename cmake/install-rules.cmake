include(CMakePackageConfigHelpers)

set(earlybert_config_dir "${CMAKE_INSTALL_DATADIR}/earlybert/cmake"
    CACHE STRING "Where earlybertConfig.cmake is installed, relative to the prefix")
mark_as_advanced(earlybert_config_dir)

install(DIRECTORY include/ DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT earlybert_development)

install(TARGETS earlybert EXPORT earlybertTargets)
if(TARGET earlybert_mpi)
  install(TARGETS earlybert_mpi EXPORT earlybertTargets)
endif()
# earlybertConfig.cmake looks for MPI when earlybert::mpi is in the package.
if(TARGET earlybert_mpi)
  set(EARLYBERT_PACKAGE_HAS_MPI ON)
else()
  set(EARLYBERT_PACKAGE_HAS_MPI OFF)
endif()
install(EXPORT earlybertTargets NAMESPACE earlybert:: DESTINATION "${earlybert_config_dir}"
        COMPONENT earlybert_development)

configure_package_config_file(cmake/earlybertConfig.cmake.in
                              "${PROJECT_BINARY_DIR}/earlybertConfig.cmake"
                              INSTALL_DESTINATION "${earlybert_config_dir}")
# Header-only: the package does not depend on the consumer's architecture.
write_basic_package_version_file("${PROJECT_BINARY_DIR}/earlybertConfigVersion.cmake"
                                 COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES "${PROJECT_BINARY_DIR}/earlybertConfig.cmake" cmake/Findutf8proc.cmake
              "${PROJECT_BINARY_DIR}/earlybertConfigVersion.cmake"
        DESTINATION "${earlybert_config_dir}" COMPONENT earlybert_development)
