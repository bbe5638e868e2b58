// Stored object encoding and causal write logic (see object.hpp). Any thread.
#include "lib/devnode/object.hpp"

#include <algorithm>

#include "lib/devnode/encoding.hpp"

namespace rfs::devnode {

namespace {

constexpr uint8_t kObjectVersion = 1;
constexpr std::string_view kClockMagic = "dv1";

void put_clock(RecordWriter& w, const VClock& clock) {
    w.u64(clock.size());
    for (const auto& [actor, n] : clock) {
        w.str(actor);
        w.u64(n);
    }
}

VClock get_clock(RecordReader& r) {
    VClock clock;
    uint64_t n = r.u64();
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
        std::string actor = r.str();
        uint64_t c = r.u64();
        clock.emplace_back(std::move(actor), c);
    }
    return clock;
}

void put_pairs(RecordWriter& w, const std::vector<std::pair<std::string, std::string>>& v) {
    w.u64(v.size());
    for (const auto& [a, b] : v) {
        w.str(a);
        w.str(b);
    }
}

std::vector<std::pair<std::string, std::string>> get_pairs(RecordReader& r) {
    std::vector<std::pair<std::string, std::string>> v;
    uint64_t n = r.u64();
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
        std::string a = r.str();
        std::string b = r.str();
        v.emplace_back(std::move(a), std::move(b));
    }
    return v;
}

} // namespace

bool Object::all_deleted() const {
    return std::all_of(siblings.begin(), siblings.end(),
                       [](const Content& c) { return c.deleted; });
}

int64_t Object::newest_modified_us() const {
    int64_t t = 0;
    for (const auto& c : siblings)
        t = std::max(t, c.last_modified_us);
    return t;
}

std::vector<std::pair<std::string, std::string>> Object::index_entries() const {
    std::vector<std::pair<std::string, std::string>> all;
    for (const auto& c : siblings) {
        if (!c.deleted) all.insert(all.end(), c.indexes.begin(), c.indexes.end());
    }
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    return all;
}

std::string encode_object(const Object& obj) {
    RecordWriter w;
    w.byte(kObjectVersion);
    w.str(obj.actor);
    put_clock(w, obj.clock);
    w.u64(obj.siblings.size());
    for (const auto& c : obj.siblings) {
        w.str(c.value);
        w.str(c.content_type);
        w.str(c.charset);
        w.str(c.content_encoding);
        w.str(c.vtag);
        w.i64(c.last_modified_us);
        w.byte(c.deleted ? 1 : 0);
        w.u64(c.links.size());
        for (const auto& l : c.links) {
            w.str(l.bucket);
            w.str(l.key);
            w.str(l.tag);
        }
        put_pairs(w, c.meta);
        put_pairs(w, c.indexes);
        w.str(c.dot.actor);
        w.u64(c.dot.counter);
    }
    return std::move(w.data());
}

std::optional<Object> decode_object(std::string_view bytes) {
    RecordReader r(bytes);
    if (r.byte() != kObjectVersion) return std::nullopt;
    Object obj;
    obj.actor = r.str();
    obj.clock = get_clock(r);
    uint64_t n = r.u64();
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
        Content c;
        c.value = r.str();
        c.content_type = r.str();
        c.charset = r.str();
        c.content_encoding = r.str();
        c.vtag = r.str();
        c.last_modified_us = r.i64();
        c.deleted = r.byte() != 0;
        uint64_t nl = r.u64();
        for (uint64_t k = 0; k < nl && r.ok(); ++k) {
            Link l;
            l.bucket = r.str();
            l.key = r.str();
            l.tag = r.str();
            c.links.push_back(std::move(l));
        }
        c.meta = get_pairs(r);
        c.indexes = get_pairs(r);
        c.dot.actor = r.str();
        c.dot.counter = r.u64();
        obj.siblings.push_back(std::move(c));
    }
    if (!r.ok() || !r.at_end()) return std::nullopt;
    return obj;
}

std::string encode_vclock(const VClock& clock) {
    RecordWriter w;
    for (char c : kClockMagic)
        w.byte(static_cast<uint8_t>(c));
    put_clock(w, clock);
    return base64_encode(w.data());
}

std::optional<VClock> decode_vclock(std::string_view header) {
    while (!header.empty() && (header.front() == ' ' || header.front() == '\t'))
        header.remove_prefix(1);
    while (!header.empty() && (header.back() == ' ' || header.back() == '\t'))
        header.remove_suffix(1);
    auto raw = base64_decode(header);
    if (!raw || raw->substr(0, kClockMagic.size()) != kClockMagic) return std::nullopt;
    RecordReader r(std::string_view(*raw).substr(kClockMagic.size()));
    VClock clock = get_clock(r);
    if (!r.ok() || !r.at_end()) return std::nullopt;
    std::sort(clock.begin(), clock.end());
    return clock;
}

uint64_t clock_get(const VClock& clock, std::string_view actor) {
    for (const auto& [a, n] : clock) {
        if (a == actor) return n;
    }
    return 0;
}

VClock clock_merge(const VClock& a, const VClock& b) {
    VClock out = a;
    for (const auto& [actor, n] : b) {
        // (clang 14 cannot capture a structured binding: the lambda gets its own reference.)
        auto it = std::find_if(out.begin(), out.end(),
                               [&who = actor](const auto& e) { return e.first == who; });
        if (it == out.end()) {
            out.emplace_back(actor, n);
        } else {
            it->second = std::max(it->second, n);
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool clock_covers(const VClock& clock, const Dot& dot) {
    return clock_get(clock, dot.actor) >= dot.counter;
}

bool clock_equal(const VClock& a, const VClock& b) {
    return a == b;
}

Object apply_write(const std::optional<Object>& stored, const VClock& client, Content content,
                   bool allow_mult) {
    Object out;
    if (stored) {
        out.actor = stored->actor;
        out.clock = clock_merge(stored->clock, client);
        if (allow_mult) {
            for (const auto& s : stored->siblings) {
                if (!clock_covers(client, s.dot)) out.siblings.push_back(s);
            }
        }
    } else {
        out.actor = random_base62(64);
        out.clock = client;
    }
    uint64_t next = clock_get(out.clock, out.actor) + 1;
    out.clock = clock_merge(out.clock, VClock{{out.actor, next}});
    content.dot = Dot{out.actor, next};
    content.vtag = random_base62(128);
    content.last_modified_us = now_micros();
    out.siblings.push_back(std::move(content));
    return out;
}

} // namespace rfs::devnode
