/* The kernels are `static inline` in include/CKernels.h so that they inline into Swift; a C
 * target needs one source file, and this is it. */
#include "CKernels.h"
