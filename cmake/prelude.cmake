# Refuse in-source builds: they litter the tree and break the presets' binary directories.
if(CMAKE_SOURCE_DIR STREQUAL CMAKE_BINARY_DIR)
  message(FATAL_ERROR "earlybert: in-source builds are not supported. Use a preset, e.g. "
                      "'cmake --preset dev', or pass -B <build directory>.")
endif()

include(GNUInstallDirs)
