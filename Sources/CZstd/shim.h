// CZstd from Debian's -dev package (parquet page decompression).
#pragma once
#include <zstd.h>
