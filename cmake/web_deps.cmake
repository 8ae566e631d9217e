# The WebAssembly build's dependencies (included under Emscripten): fmt, Eigen, Boost and
# nlohmann-json from the host's Debian headers, seen through a folder of links to them alone (adding
# /usr/include itself would put glibc's headers before Emscripten's).
set(GG_HOST_INCLUDE_DIR "/usr/include" CACHE PATH "Where the host's fmt, Eigen, Boost and nlohmann-json headers are")
set(GG_WEB_INCLUDE ${CMAKE_BINARY_DIR}/host_include)
file(MAKE_DIRECTORY ${GG_WEB_INCLUDE})
foreach(pair "fmt=fmt" "boost=boost" "nlohmann=nlohmann" "Eigen=eigen3/Eigen")
  string(REPLACE "=" ";" pair "${pair}")
  list(GET pair 0 name)
  list(GET pair 1 path)
  if(NOT EXISTS ${GG_HOST_INCLUDE_DIR}/${path})
    message(FATAL_ERROR "the web build needs ${GG_HOST_INCLUDE_DIR}/${path}: bash scripts/deps.sh installs it")
  endif()
  file(CREATE_LINK ${GG_HOST_INCLUDE_DIR}/${path} ${GG_WEB_INCLUDE}/${name} SYMBOLIC)
endforeach()
add_library(gg_web_host_headers INTERFACE)
target_include_directories(gg_web_host_headers SYSTEM INTERFACE ${GG_WEB_INCLUDE})
add_library(Eigen3::Eigen ALIAS gg_web_host_headers)
add_library(Boost::headers ALIAS gg_web_host_headers)
add_library(nlohmann_json::nlohmann_json ALIAS gg_web_host_headers)
# C++ exceptions are gg's errors: Emscripten's default aborts on throw, so catching is turned on.
add_compile_options(-fexceptions)
add_link_options(-fexceptions)
# Emscripten's libc++ 14 has no std::from_chars for double and no std::bit_cast: shims for both.
add_compile_options(-include ${PROJECT_SOURCE_DIR}/web/engine/libcxx_compat.hpp)
# fmt: its compiled part built once (web/engine/fmt_compiled.cpp, for fmt 9, Debian 12's; after the
# options above, which it needs too), not in every file as fmt's header-only mode does: that cost
# 2.7 s of em++ CPU per file, half of the whole build.
file(STRINGS ${GG_HOST_INCLUDE_DIR}/fmt/core.h GG_FMT_VERSION REGEX "^#define FMT_VERSION [0-9]+")
string(REGEX REPLACE "[^0-9]" "" GG_FMT_VERSION "${GG_FMT_VERSION}")
if(GG_FMT_VERSION GREATER_EQUAL 90000 AND GG_FMT_VERSION LESS 100000)
  add_library(gg_web_fmt STATIC ${PROJECT_SOURCE_DIR}/web/engine/fmt_compiled.cpp)
  target_link_libraries(gg_web_fmt PUBLIC gg_web_host_headers)
  add_library(fmt::fmt ALIAS gg_web_fmt)
else()
  add_library(fmt::fmt ALIAS gg_web_host_headers)
  target_compile_definitions(gg_web_host_headers INTERFACE FMT_HEADER_ONLY)
endif()
# The parts of nn the engine uses (the playground's MLP, losses, data and optimizers), the only ones
# compiled here (nn/CMakeLists.txt): not the recurrent and attention layers, files, plots or trainer.
set(GG_NN_ONLY init layers losses metrics module data/dataloader data/datasets optim/optimizer optim/sgd
    optim/rmsprop optim/adam optim/adagrad optim/adadelta optim/nadam)
