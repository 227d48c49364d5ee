// libelf (elfutils) for the ELFImage loader. Install with `apt-get install -y libelf-dev`.
#include <libelf.h>
#include <gelf.h>
