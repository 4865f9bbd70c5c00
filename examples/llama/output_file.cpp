#include "output_file.hpp"

#include <fstream>
#include <system_error>

#include "error.hpp"

namespace llama {

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  std::filesystem::path temporary = path;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    check(out.good(), "cannot create ", temporary.string());
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out.good()) {
      std::filesystem::remove(temporary);
      throw error("error writing " + temporary.string());
    }
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    std::filesystem::remove(temporary);
    throw error("cannot rename " + temporary.string() + " to " + path.string() + ": " + ec.message());
  }
}

}  // namespace llama
