// Included first by every header in detail/: they are fftmat's internals, whose names and contracts
// change without notice, so a program reaches them only through a public header (as Eigen's
// src/*/InternalHeaderCheck.h makes its internal headers refuse direct inclusion). Each public
// header that includes detail/ headers defines FFTMAT_INTERNAL_HEADERS_ALLOWED first; code that
// tests or measures an internal stage includes such a public header before the detail/ one.
#ifndef FFTMAT_INTERNAL_HEADERS_ALLOWED
#error "fftmat/detail/ headers are internal: include a public header such as <fftmat/fftmat.hpp> first"
#endif
