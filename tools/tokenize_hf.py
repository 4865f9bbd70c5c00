#!/usr/bin/env python3
"""Writes a text file's token ids as fftmat-llama's --ids-input reads them, with a model's own
Hugging Face tokenizer.json (the `tokenizers` package, pinned in tools/requirements.txt): for
models whose tokenizer is not SentencePiece (Llama-3, SmolLM, Mistral's tokenizer.json).

  tools/tokenize_hf.py --tokenizer MODEL/tokenizer.json --lines prompts.txt --out prompts.ids
  tools/tokenize_hf.py --tokenizer MODEL/tokenizer.json --whole heldout.txt --out heldout.ids

--lines: one output line per non-blank input line (the prompt files of eval/sweep, as
read_prompt_file takes them: a trailing CR dropped, lines of only spaces and tabs skipped).
--whole: the whole text as one sequence on one line (held-out text and perplexity --file: the
text is tokenized once, as llama-perplexity does). Each sequence is encoded with the tokenizer's
own special tokens (add_special_tokens=True: Llama-3 prepends <|begin_of_text|>); --bos ID
prepends ID where the tokenizer adds none. Ids are written in decimal, separated by commas.
"""

import argparse
import os
import sys
import tempfile

from tokenizers import Tokenizer


def read_lines(text):
    """The non-blank lines, as examples/llama/evaluation/evaluation.cpp's read_prompt_file keeps them."""
    lines = []
    for line in text.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if line.strip(" \t"):
            lines.append(line)
    return lines


def encode(tokenizer, text, bos):
    ids = tokenizer.encode(text, add_special_tokens=True).ids
    if bos is not None and (not ids or ids[0] != bos):
        ids = [bos] + ids
    if not ids:
        sys.exit("error: a sequence encodes to no tokens")
    return ids


def write_atomically(path, content):
    """Writes `content` to a unique temporary beside `path`, then renames it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 is for temporaries, not for outputs
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(content)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True, help="a Hugging Face tokenizer.json")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--lines", help="a prompt file: one sequence per non-blank line")
    source.add_argument("--whole", help="a text tokenized once, as one sequence")
    parser.add_argument("--bos", type=int, help="prepend this id to every sequence that does not start with it")
    parser.add_argument("--out", required=True, help="the ids file to write")
    args = parser.parse_args()

    tokenizer = Tokenizer.from_file(args.tokenizer)
    with open(args.lines or args.whole, encoding="utf-8", newline="") as f:
        text = f.read()
    texts = read_lines(text) if args.lines else [text]
    if not texts:
        sys.exit(f"error: {args.lines} has no non-blank lines")
    sequences = [encode(tokenizer, t, args.bos) for t in texts]
    write_atomically(args.out, "".join(",".join(map(str, ids)) + "\n" for ids in sequences))
    print(f"wrote {len(sequences)} sequence(s), {sum(map(len, sequences))} tokens, to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
