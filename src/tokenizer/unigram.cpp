#include "tokenizer/vocab.h"
#include "util/error.h"
namespace origami::tok {
std::unique_ptr<Model> MakeUnigramModel(const Vocab&) { FailKind(ErrorKind::kUnsupported, "unigram: todo"); }
}
