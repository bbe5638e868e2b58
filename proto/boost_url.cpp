// The compiled part of Boost.URL (Debian's libboost1.81-dev ships it header-only, without a
// libboost_url library): included in exactly this one translation unit of the project, so
// everything that links rfs_proto (lib/riak, lib/devnode, riak-devnode) can use Boost.URL.
#include <boost/url/src.hpp>
