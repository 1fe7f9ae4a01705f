// What the N-API glue of grove_native.node (addon.cc) and of the bench-only
// grove_bench.node (bench_addon.cc) share: errors, argument conversion and
// cgroup references.
#ifndef GROVE_NAPI_COMMON_H
#define GROVE_NAPI_COMMON_H

#include <napi.h>

#include <cerrno>
#include <string>
#include <vector>

extern "C" {
#include "cgroup.h"
#include "container.h"
#include "error.h"
}

namespace grove {

inline const char *ErrnoName(int errnum) {
  switch (errnum) {
  case ENOENT: return "ENOENT";
  case EACCES: return "EACCES";
  case EPERM: return "EPERM";
  case EBUSY: return "EBUSY";
  case EEXIST: return "EEXIST";
  case EINVAL: return "EINVAL";
  case ENOTDIR: return "ENOTDIR";
  case ELOOP: return "ELOOP";
  case ENOEXEC: return "ENOEXEC";
  case ENOMEM: return "ENOMEM";
  case EAGAIN: return "EAGAIN";
  case ESRCH: return "ESRCH";
  default: return "EUNKNOWN";
  }
}

inline Napi::Error ToJsError(Napi::Env env, const grove_error_t &err) {
  Napi::Error e = Napi::Error::New(env, err.msg);
  e.Set("errno", Napi::Number::New(env, err.errnum));
  e.Set("code", Napi::String::New(env, err.errnum != 0 ? ErrnoName(err.errnum) : "EGROVE"));
  return e;
}

inline std::string StringArg(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

inline int64_t IntegerProp(const Napi::Object &o, const char *name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber())
    throw Napi::TypeError::New(o.Env(), std::string(name) + " must be a number");
  return v.As<Napi::Number>().Int64Value();
}

inline std::vector<std::string> StringArray(Napi::Env env, Napi::Value v, const char *name) {
  if (!v.IsArray())
    throw Napi::TypeError::New(env, std::string(name) + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsString())
      throw Napi::TypeError::New(env, std::string(name) + " must be an array of strings");
    out.push_back(e.As<Napi::String>().Utf8Value());
  }
  return out;
}

// Owns the strings a grove_cgroup_t points at.
struct CgroupRef {
  grove_cgroup_mode_t mode;
  std::string root, parent, id;
  bool hasId;
  grove_cgroup_t View() const {
    return grove_cgroup_t{mode, root.c_str(), parent.c_str(), hasId ? id.c_str() : nullptr, 0, nullptr, 0};
  }
  const grove_cgroup_ops *Ops() const { return grove_cgroup_ops_for(mode); }
};

inline grove_cgroup_mode_t ModeArg(const Napi::CallbackInfo &info, size_t i) {
  std::string m = StringArg(info, i, "mode");
  if (m == "v1") return GROVE_CGROUP_V1;
  if (m == "v2") return GROVE_CGROUP_V2;
  throw Napi::TypeError::New(info.Env(), "mode must be \"v1\" or \"v2\"");
}

// (mode, root, parent[, id]) from the first arguments.
inline CgroupRef CgroupArgs(const Napi::CallbackInfo &info, bool withId) {
  CgroupRef ref{ModeArg(info, 0), StringArg(info, 1, "root"), StringArg(info, 2, "parent"), "", false};
  if (withId && info.Length() > 3 && info[3].IsString()) {
    ref.id = info[3].As<Napi::String>().Utf8Value();
    ref.hasId = true;
  }
  return ref;
}

} // namespace grove

#endif
