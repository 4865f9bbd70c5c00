// Bad input and interrupted runs: a teacher cache that proves what it holds, outputs that are
// complete or absent, and the silent acceptances that are now errors.

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <sstream>
#include <thread>

#include "engine/checkpoint.hpp"
#include "engine/output_file.hpp"
#include "engine/tokenizer.hpp"
#include "evaluation/evaluation.hpp"
#include "evaluation/report.hpp"
#include "test_helpers.hpp"
#include "threads.hpp"

namespace {

using llama_test::contains;
using llama_test::error_of;
using llama_test::read_file;
using llama_test::TempDir;
using llama_test::write_file;

/// Names in `directory` other than `expected`: temporaries left behind.
std::vector<std::string> other_files(const std::filesystem::path& directory, const std::vector<std::string>& expected) {
  std::vector<std::string> others;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    if (std::find(expected.begin(), expected.end(), name) == expected.end()) others.push_back(name);
  }
  return others;
}

const std::filesystem::path kShippedModel = std::filesystem::path(FFTMAT_LLAMA_TEST_DATA) / "../../../models/tiny-shakespeare";

/// A small evaluation of a copy of the shipped model: two short prompts, one perplexity window.
struct SmallEvaluation {
  TempDir dir;
  llama::EvalSettings settings;
  std::vector<std::string> progress;

  SmallEvaluation() {
    const auto model = dir.path() / "model";
    std::filesystem::create_directories(model);
    for (const char* name : {"config.json", "model.safetensors", "tokenizer.model"}) {
      std::filesystem::copy_file(kShippedModel / name, model / name);
    }
    write_file(dir.path() / "prompts.txt", "To be, or not to be\nWhat light through yonder window breaks\n");
    write_file(dir.path() / "heldout.txt", std::string(40, 'a') + " the king is dead, long live the king " +
                                               std::string(40, 'b'));
    settings.model = model;
    settings.prompts = settings.calibration = dir.path() / "prompts.txt";
    settings.heldout = dir.path() / "heldout.txt";
    settings.cache_dir = dir.path() / "cache";
    settings.max_len = 12;
    settings.perplexity_windows = 1;
    settings.speed = {4, 2, 1, false};
  }

  /// The original model's KL against the teacher's logits as the evaluator holds them.
  double baseline_kl() {
    progress.clear();
    llama::Evaluator evaluator(settings, [&](const std::string& line) { progress.push_back(line); });
    return evaluator.evaluate("baseline", llama::PatchSettings{}).kl.mean;
  }

  std::string progress_text() const {
    std::string text;
    for (const std::string& line : progress) text += line + "\n";
    return text;
  }

  std::filesystem::path cache_file() const {
    for (const auto& entry : std::filesystem::directory_iterator(settings.cache_dir)) return entry.path();
    return {};
  }
};

}  // namespace

TEST_CASE("teacher cache: reused only when the weights, prompts and its own payload verify") {
  SmallEvaluation run;
  CHECK(run.baseline_kl() == 0.0);
  const std::filesystem::path cache = run.cache_file();
  REQUIRE(!cache.empty());
  CHECK(run.baseline_kl() == 0.0);
  CHECK(contains(run.progress_text(), "teacher logits loaded from " + cache.string() + " (checksum verified)"));

  // Logits overwritten with zeros at the same size: the payload checksum fails.
  std::string bytes = read_file(cache);
  std::uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, bytes.data() + 8, 8);  // magic, header length, header, then the logits
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(16 + header_bytes), bytes.end(), '\0');
  write_file(cache, bytes);
  CHECK(run.baseline_kl() == 0.0);
  CHECK(contains(run.progress_text(), "do not match the checksum in its header"));
  CHECK(contains(run.progress_text(), "recomputing"));
  CHECK(run.baseline_kl() == 0.0);
  CHECK(contains(run.progress_text(), "(checksum verified)"));

  // Weights edited in place with their size and modification time restored: the content hash differs.
  const auto weights = run.settings.model / "model.safetensors";
  const auto modified = std::filesystem::last_write_time(weights);
  std::string model = read_file(weights);
  std::uint64_t header = 0;
  std::memcpy(&header, model.data(), 8);  // safetensors: little-endian header length, header, data
  model[8 + header + 1000] = static_cast<char>(model[8 + header + 1000] ^ 0x01);  // a low mantissa bit of an f16 weight
  write_file(weights, model);
  std::filesystem::last_write_time(weights, modified);
  CHECK(run.baseline_kl() == 0.0);
  CHECK(contains(run.progress_text(), "the checkpoint's files differ in content"));

  // A file that is not a cache at all.
  write_file(cache, "not a cache");
  CHECK(run.baseline_kl() == 0.0);
  CHECK(contains(run.progress_text(), "it is not a teacher cache file; recomputing"));
}

TEST_CASE("outputs: unique temporaries, none left behind, concurrent writers never collide") {
  const TempDir dir;
  const auto target = dir.path() / "out.bin";
  llama::write_file_atomically(target, "first");
  CHECK(read_file(target) == "first");
  CHECK(other_files(dir.path(), {"out.bin"}).empty());
  // The permissions of open(O_CREAT, 0666) under the umask, not mkstemp's owner-only 0600.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  struct stat info {};
  REQUIRE(::stat(target.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == (0666 & ~mask));

  // Eight threads writing one target at once: each write must succeed and the result be one of them.
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int k = 0; k < 8; ++k) {
    writers.emplace_back([&, k] {
      for (int round = 0; round < 20; ++round) {
        try {
          llama::write_file_atomically(target, std::string(1000, static_cast<char>('a' + k)));
        } catch (const llama::error&) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  CHECK(failures == 0);
  const std::string result = read_file(target);
  CHECK(result == std::string(1000, result[0]));
  CHECK(other_files(dir.path(), {"out.bin"}).empty());

  // A set whose second file cannot be written replaces nothing and leaves nothing.
  CHECK(contains(error_of([&] {
                   llama::write_files_atomically({{target, "new"}, {dir.path() / "missing" / "b", "new"}});
                 }),
                 "cannot create a temporary file beside"));
  CHECK(read_file(target) == result);
  CHECK(other_files(dir.path(), {"out.bin"}).empty());
}

TEST_CASE("outputs: SIGTERM during a write removes the temporary") {
  const TempDir dir;
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::signal(SIGTERM, SIG_DFL);  // not doctest's handler, which would report the signal as a failure
    // The watcher signals as soon as the temporary exists, while 256 MB are still being written.
    std::thread watcher([&] {
      while (other_files(dir.path(), {}).empty()) std::this_thread::yield();
      ::kill(::getpid(), SIGTERM);
    });
    watcher.detach();
    llama::write_file_atomically(dir.path() / "big.bin", std::string(256u << 20, 'x'));
    std::this_thread::sleep_for(std::chrono::seconds(5));  // the signal arrives before this ends
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
  const std::vector<std::string> left = other_files(dir.path(), {"big.bin"});
  CHECK(left.empty());
}

TEST_CASE("outputs: the three report files are written as one set; CSV fields are quoted") {
  const TempDir dir;
  llama::EvalSettings settings;
  llama::LlamaConfig config;
  std::vector<llama::RowResult> rows(1);
  rows[0].name = "a \"quoted\", name";
  llama::write_report(dir.path(), rows, settings, config);
  rows.push_back(rows[0]);
  rows[1].name = "second";
  llama::write_report(dir.path(), rows, settings, config);
  CHECK(other_files(dir.path(), {"report.md", "results.csv", "results.json"}).empty());
  const std::string csv = read_file(dir.path() / "results.csv");
  // RFC 4180, section 2: a field with quotes or commas is quoted and each quote doubled.
  CHECK(contains(csv, "\n\"a \"\"quoted\"\", name\",\"none\","));
  CHECK(contains(csv, "\n\"second\","));
  CHECK(nlohmann::json::parse(read_file(dir.path() / "results.json")).at("rows").size() == 2);
  CHECK(contains(read_file(dir.path() / "report.md"), "| second |"));
}

TEST_CASE("outputs: the three report files hold the same fields (one schema)") {
  const TempDir dir;
  std::vector<llama::RowResult> rows(2);
  rows[0].name = "dense";  // no block size: '-' in the markdown, so empty in the CSV and null in JSON
  rows[1].name = "patched";
  rows[1].settings.projection = llama::Projection::calibrated;
  rows[1].settings.block_size = 128;
  rows[1].settings.spectra = fftmat::SpectrumPrecision::bfloat16;
  rows[1].top1 = {0.75, 0.125};
  llama::write_report(dir.path(), rows, llama::EvalSettings{}, llama::LlamaConfig{});
  std::istringstream csv(read_file(dir.path() / "results.csv"));
  std::string header, dense, patched;
  std::getline(csv, header);
  std::getline(csv, dense);
  std::getline(csv, patched);
  const auto field = [&](const std::string& line, const std::string& name) {
    std::size_t column = 0;
    for (std::size_t at = 0; at < header.find("," + name + ","); at = header.find(',', at + 1)) ++column;
    std::size_t begin = 0;
    for (std::size_t k = 0; k < column; ++k) begin = line.find(',', begin) + 1;
    return line.substr(begin, line.find(',', begin) - begin);
  };
  CHECK(field(dense, "block_size").empty());
  CHECK(field(patched, "block_size") == "128");
  CHECK(field(patched, "spectra") == "\"bfloat16\"");
  CHECK(field(patched, "top1_stderr") == "0.125");
  const auto json = nlohmann::json::parse(read_file(dir.path() / "results.json")).at("rows");
  CHECK(json[0].at("block_size").is_null());
  CHECK(json[1].at("block_size") == 128);
  CHECK(json[1].at("stderr").at("top1") == 0.125);
  CHECK(contains(read_file(dir.path() / "report.md"), "| patched | 0 | 128 | Yes |"));
}

TEST_CASE("outputs: a sweep killed at any moment leaves three report files of one row count") {
  const TempDir dir;
  for (const int delay_ms : {40, 90, 150, 230}) {
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      std::signal(SIGTERM, SIG_DFL);
      // Rows of 50 prompts each make every write_report a few megabytes: the signal lands mid-write.
      std::vector<llama::RowResult> rows;
      for (int n = 1;; ++n) {
        rows.emplace_back();
        rows.back().name = "row " + std::to_string(n);
        rows.back().per_prompt.resize(50);
        for (int copy = 0; copy < 40; ++copy) rows.push_back(rows.back());
        llama::write_report(dir.path(), rows, llama::EvalSettings{}, llama::LlamaConfig{});
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(child, SIGTERM);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    if (!std::filesystem::exists(dir.path() / "results.json")) continue;  // killed before the first set
    const std::string csv = read_file(dir.path() / "results.csv"), md = read_file(dir.path() / "report.md");
    const std::size_t json_rows = nlohmann::json::parse(read_file(dir.path() / "results.json")).at("rows").size();
    const auto csv_rows = static_cast<std::size_t>(std::count(csv.begin(), csv.end(), '\n')) - 1;
    std::size_t md_rows = 0;
    for (std::size_t at = md.find("\n| row "); at != std::string::npos; at = md.find("\n| row ", at + 1)) ++md_rows;
    INFO("killed after ", delay_ms, " ms");
    CHECK(csv_rows == json_rows);
    CHECK(md_rows == json_rows);
    CHECK(other_files(dir.path(), {"report.md", "results.csv", "results.json"}).empty());
  }
}

TEST_CASE("checks before work: output directories, context lengths") {
  const TempDir dir;
  write_file(dir.path() / "file", "");
  CHECK(contains(error_of([&] { llama::require_writable_directory(dir.path() / "file" / "out", "output directory"); }),
                 "output directory \"" + (dir.path() / "file" / "out").string() + "\" cannot be created"));
  CHECK(contains(error_of([&] { llama::require_writable_directory(dir.path() / "file", "output directory"); }),
                 "is not a directory"));
  CHECK(error_of([&] { llama::require_writable_directory(dir.path() / "new" / "out", "output directory"); }) == "");
  CHECK(other_files(dir.path() / "new" / "out", {}).empty());

  llama::LlamaConfig config;
  config.max_position_embeddings = 512;
  llama::BenchSettings speed{512, 512, 1, false};
  CHECK(error_of([&] { llama::check_speed_lengths(speed, config, "--pp", "--tg"); }) == "");
  speed.prompt_tokens = 2000;
  CHECK(error_of([&] { llama::check_speed_lengths(speed, config, "--pp", "--tg"); }) ==
        "--pp 2000 prefill tokens exceed the model's context of 512 positions (max_position_embeddings)");
  speed.prompt_tokens = 1;
  speed.generated_tokens = 513;
  CHECK(contains(error_of([&] { llama::check_speed_lengths(speed, config, "--pp", "--tg"); }), "--tg 513 decoded"));
}

TEST_CASE("silent acceptances: token id lists") {
  CHECK(llama::parse_token_ids("1,306,4658") == std::vector<int>{1, 306, 4658});
  CHECK(llama::parse_token_ids("0") == std::vector<int>{0});
  CHECK(llama::parse_token_ids("2147483647") == std::vector<int>{2147483647});
  CHECK(error_of([] { llama::parse_token_ids(""); }) == "token ids: the list is empty (give e.g. 1,306,4658)");
  CHECK(error_of([] { llama::parse_token_ids("1,,2"); }) == "token ids '1,,2': entry 2 (at character 3) is empty");
  CHECK(contains(error_of([] { llama::parse_token_ids("1,2,"); }), "entry 3 (at character 5) is empty"));
  CHECK(contains(error_of([] { llama::parse_token_ids("1,-2"); }), "entry 2 '-2' is not a non-negative integer"));
  CHECK(contains(error_of([] { llama::parse_token_ids("1, 2"); }), "' 2' is not a non-negative integer"));
  CHECK(contains(error_of([] { llama::parse_token_ids("2147483648"); }), "entry 1 2147483648 is too large"));
  CHECK(contains(error_of([] { llama::parse_token_ids("99999999999999999999"); }), "is too large"));
}

TEST_CASE("silent acceptances: thread counts are bounded with a readable message") {
  CHECK(llama::thread_count_error(1, 2) == "");
  CHECK(llama::thread_count_error(8, 2) == "");
  CHECK(llama::thread_count_error(9, 2) == "9 is outside [1, 8] (4 x the 2 hardware threads)");
  CHECK(llama::thread_count_error(0, 16) == "0 is outside [1, 64] (4 x the 16 hardware threads)");
  CHECK(llama::thread_count_error(100000, 2) == "100000 is outside [1, 8] (4 x the 2 hardware threads)");
  CHECK(llama::thread_count_error(4, 0) == "");  // hardware count unknown: taken as 1
}

TEST_CASE("silent acceptances: prompt files must be UTF-8 text, the line is named") {
  const TempDir dir;
  const auto prompts = dir.path() / "prompts.txt";
  write_file(prompts, "caf\xc3\xa9 cr\xc3\xa8me\r\n\xe2\x82\xac 5 and \xf0\x9f\x98\x80\n");
  CHECK(llama::read_prompt_file(prompts).size() == 2);
  const auto error_for = [&](const std::string& text) {
    write_file(prompts, text);
    return error_of([&] { llama::read_prompt_file(prompts); });
  };
  CHECK(error_for("good\nbad \xff byte\n") == prompts.string() + " line 2, byte 5: byte 0xff is not valid UTF-8; "
                                                                   "the file must be UTF-8 text");
  CHECK(contains(error_for(std::string("one\ntwo\nthree\0zero\n", 19)), "line 3, byte 6: control character 0x00 (a binary file?)"));
  CHECK(contains(error_for(std::string("x\xc0\xaf", 3)), "line 1, byte 2: byte 0xc0 is not valid UTF-8"));  // overlong '/'
  CHECK(contains(error_for("\xed\xa0\x80"), "byte 0xed is not valid UTF-8"));                               // a surrogate
  CHECK(contains(error_for("\xf4\x90\x80\x80"), "byte 0xf4 is not valid UTF-8"));                           // above U+10FFFF
  CHECK(contains(error_for("cut \xe2\x82"), "byte 0xe2 is not valid UTF-8"));                               // truncated
}

TEST_CASE("silent acceptances: a tokenizer.model directory, a config with fewer layers than the checkpoint") {
  const TempDir dir;
  std::filesystem::create_directories(dir.path() / "tokenizer.model");
  CHECK(error_of([&] { llama::Tokenizer(dir.path() / "tokenizer.model"); }) ==
        "tokenizer model \"" + (dir.path() / "tokenizer.model").string() + "\" is a directory");
  CHECK(contains(error_of([&] { llama::Tokenizer(dir.path() / "none.model"); }), "does not exist"));

  const auto model = llama_test::copy_reference("gqa_f32", dir);
  nlohmann::json config = nlohmann::json::parse(read_file(model / "config.json"));
  REQUIRE(config.at("num_hidden_layers") == 2);
  config["num_hidden_layers"] = 1;
  write_file(model / "config.json", config.dump());
  const std::string message = error_of([&] { llama::Checkpoint checkpoint(model); });
  CHECK(contains(message, "says num_hidden_layers = 1, but the checkpoint holds 9 tensors of further layers, such as "
                          "'model.layers.1.input_layernorm.weight'"));
}
