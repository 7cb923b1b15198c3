/*
 * wordcount.cpp -- counts the words of stdin across runs, in a hash map
 * that lives in the arena and is found by name.
 *
 *   wordcount FILE < text    add text's words to FILE's counts, then print
 *                            every word with its count so far, by word
 *
 * The map is a boost::unordered_map of arena strings to counts, allocated
 * through fm::allocator, so its buckets, nodes and long strings are in the
 * file and its links are offsets: the next run maps the file wherever the
 * kernel likes and carries on counting.  A word is a run of letters,
 * digits, apostrophes or hyphens, lowercased.
 */
#include <fmalloc.hpp>

#include <boost/container/string.hpp>
#include <boost/container/vector.hpp>
#include <boost/unordered_map.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>

template <class T>
using arena_allocator = fm::allocator<T>;
typedef boost::container::basic_string<char, std::char_traits<char>, arena_allocator<char> >
    arena_string;
typedef boost::unordered_map<arena_string, std::size_t, boost::hash<arena_string>,
                             std::equal_to<arena_string>,
                             arena_allocator<std::pair<const arena_string, std::size_t> > >
    word_counts;

static bool word_char(int c)
{
    return std::isalnum(c) || c == '\'' || c == '-';
}

/* Adds stdin's words; returns how many there were. */
static std::size_t count_words(word_counts &counts)
{
    std::size_t words = 0;
    arena_string word; /* reused: short words never allocate */
    for (int c = std::getchar();; c = std::getchar()) {
        if (c != EOF && word_char(c)) {
            word.push_back(static_cast<char>(std::tolower(c)));
            continue;
        }
        if (!word.empty()) {
            counts[word]++;
            words++;
            word.clear();
        }
        if (c == EOF)
            return words;
    }
}

static void print_counts(const word_counts &counts)
{
    std::vector<const word_counts::value_type *> sorted;
    for (word_counts::const_iterator it = counts.begin(); it != counts.end(); ++it)
        sorted.push_back(&*it);
    std::sort(sorted.begin(), sorted.end(),
              [](const word_counts::value_type *a, const word_counts::value_type *b) {
                  return a->first < b->first;
              });
    for (std::size_t i = 0; i < sorted.size(); i++)
        std::printf("%zu %s\n", sorted[i]->second, sorted[i]->first.c_str());
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: wordcount FILE < text\n");
        return 2;
    }
    bool created = false;
    struct fm_info *fi = fmalloc_init(argv[1], &created);
    if (!fi) {
        std::fprintf(stderr, "wordcount: %s: %s\n", argv[1], fm_last_error_detail());
        return 1;
    }
    try {
        word_counts *counts = fm::find_or_construct<word_counts>("wordcount");
        std::size_t words = count_words(*counts);
        std::fprintf(stderr, "wordcount: %zu words read, %zu distinct so far\n", words,
                     counts->size());
        print_counts(*counts);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "wordcount: %s: %s\n", argv[1], e.what());
        fm_close(fi);
        return 1;
    }
    int err = fm_close(fi);
    if (err) {
        std::fprintf(stderr, "wordcount: %s: %s\n", argv[1], fm_strerror(err));
        return 1;
    }
    return 0;
}
