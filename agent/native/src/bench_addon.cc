// grove_bench.node: the runtime core's container start without a shim, for
// test/bench/runtime-start.ts only (the agent starts every container through
// grove-shim, addon.cc). start() runs the init as a child of this process and
// reports its exit from a waiter thread; pidfdSignal and closeFd handle the
// init's pidfd.
#include "napi_common.h"

#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <unistd.h>

namespace {

using namespace grove;

struct ExitReport {
  grove_exit_t exit;
  grove_error_t err;
  bool failed;
};

// One thread per container, parked in waitpid(pid): a blocked libuv pool
// thread per running container would starve fs and dns work.
void WaitForExit(pid_t pid, std::shared_ptr<CgroupRef> ref, Napi::ThreadSafeFunction onExit) {
  auto *report = new ExitReport{};
  grove_cgroup_t cg = ref->View();
  report->failed = grove_container_wait(pid, &cg, &report->exit, &report->err) < 0;
  napi_status st = onExit.BlockingCall(report, [](Napi::Env env, Napi::Function cb, ExitReport *r) {
    Napi::Object o = Napi::Object::New(env);
    if (r->failed) {
      o.Set("error", Napi::String::New(env, r->err.msg));
      o.Set("exitCode", Napi::Number::New(env, -1));
      o.Set("signal", Napi::Number::New(env, 0));
      o.Set("oomKilled", Napi::Boolean::New(env, false));
    } else {
      o.Set("exitCode", Napi::Number::New(env, r->exit.exit_code));
      o.Set("signal", Napi::Number::New(env, r->exit.signal));
      o.Set("oomKilled", Napi::Boolean::New(env, r->exit.oom_killed != 0));
    }
    delete r;
    cb.Call({o});
  });
  if (st != napi_ok)
    delete report;
  onExit.Release();
}

class StartTask : public Napi::AsyncWorker {
public:
  StartTask(Napi::Env env, Napi::ThreadSafeFunction onExit)
      : Napi::AsyncWorker(env, "grove-start"), deferred(Napi::Promise::Deferred::New(env)), onExit(onExit) {}

  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction onExit;
  std::shared_ptr<CgroupRef> cgroup;
  std::string rootfs, cwd, hostname, logPath, netnsPath;
  std::vector<std::string> argv, env;
  struct Mount {
    std::string source, destination;
    bool readonly;
  };
  std::vector<Mount> mounts;

protected:
  void Execute() override {
    std::vector<char *> argvp, envp;
    for (auto &s : argv) argvp.push_back(const_cast<char *>(s.c_str()));
    argvp.push_back(nullptr);
    for (auto &s : env) envp.push_back(const_cast<char *>(s.c_str()));
    envp.push_back(nullptr);
    grove_cgroup_t cg = cgroup->View();
    grove_container_config_t cfg;
    std::memset(&cfg, 0, sizeof(cfg));
    cfg.rootfs = rootfs.c_str();
    cfg.argv = argvp.data();
    cfg.envp = envp.data();
    cfg.cwd = cwd.c_str();
    cfg.hostname = hostname.c_str();
    cfg.log_path = logPath.c_str();
    cfg.cgroup = &cg;
    cfg.stdio_fd = -1;
    if (!netnsPath.empty())
      cfg.netns_path = netnsPath.c_str();
    std::vector<grove_mount_t> mountv;
    for (auto &m : mounts) mountv.push_back(grove_mount_t{m.source.c_str(), m.destination.c_str(), m.readonly ? 1 : 0, nullptr, 0, nullptr, 0, nullptr, {}, 0});
    cfg.mounts = mountv.data();
    cfg.nmounts = mountv.size();
    std::memset(&err_, 0, sizeof(err_));
    failed_ = grove_container_start(&cfg, &container_, &err_) < 0;
    if (!failed_) {
      // The waiter owns the thread-safe function's reference from here on.
      std::thread(WaitForExit, container_.pid, cgroup, onExit).detach();
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      onExit.Release();
      deferred.Reject(ToJsError(env, err_).Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("pid", Napi::Number::New(env, container_.pid));
    o.Set("pidfd", Napi::Number::New(env, container_.pidfd));
    deferred.Resolve(o);
  }

private:
  grove_error_t err_{};
  grove_container_t container_{};
  bool failed_ = false;
};

// start({rootfs, argv, env, cwd, hostname, logPath, cgroupMode, cgroupRoot, cgroupParent, id}, onExit)
Napi::Value Start(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "start(options, onExit)");
  Napi::Object o = info[0].As<Napi::Object>();
  auto str = [&](const char *name) {
    Napi::Value v = o.Get(name);
    if (!v.IsString())
      throw Napi::TypeError::New(env, std::string(name) + " must be a string");
    return v.As<Napi::String>().Utf8Value();
  };
  std::string mode = str("cgroupMode");
  if (mode != "v1" && mode != "v2")
    throw Napi::TypeError::New(env, "cgroupMode must be \"v1\" or \"v2\"");
  auto cgroup = std::make_shared<CgroupRef>(CgroupRef{mode == "v2" ? GROVE_CGROUP_V2 : GROVE_CGROUP_V1,
                                                      str("cgroupRoot"), str("cgroupParent"), str("id"), true});
  std::vector<std::string> argv = StringArray(env, o.Get("argv"), "argv");
  if (argv.empty())
    throw Napi::TypeError::New(env, "argv must not be empty");
  std::vector<std::string> envv = StringArray(env, o.Get("env"), "env");
  std::string rootfs = str("rootfs"), cwd = str("cwd"), hostname = str("hostname"), logPath = str("logPath");
  std::vector<StartTask::Mount> mounts;
  {
    Napi::Value mv = o.Get("mounts");
    if (!mv.IsUndefined() && !mv.IsNull()) {
      if (!mv.IsArray())
        throw Napi::TypeError::New(env, "mounts must be an array");
      Napi::Array arr = mv.As<Napi::Array>();
      if (arr.Length() > GROVE_MAX_MOUNTS)
        throw Napi::TypeError::New(env, "at most " + std::to_string(GROVE_MAX_MOUNTS) + " mounts");
      for (uint32_t i = 0; i < arr.Length(); i++) {
        Napi::Value e = arr.Get(i);
        if (!e.IsObject())
          throw Napi::TypeError::New(env, "mounts[" + std::to_string(i) + "] must be an object");
        Napi::Object m = e.As<Napi::Object>();
        Napi::Value src = m.Get("source"), dst = m.Get("destination");
        if (!src.IsString() || !dst.IsString())
          throw Napi::TypeError::New(env, "mounts[" + std::to_string(i) + "]: source and destination must be strings");
        mounts.push_back(StartTask::Mount{src.As<Napi::String>().Utf8Value(), dst.As<Napi::String>().Utf8Value(),
                                          m.Get("readonly").ToBoolean().Value()});
      }
    }
  }

  auto tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "grove-waiter", 0, 1);
  auto *task = new StartTask(env, tsfn);
  task->cgroup = cgroup;
  task->rootfs = rootfs;
  task->cwd = cwd;
  task->hostname = hostname;
  task->logPath = logPath;
  {
    Napi::Value ns = o.Get("netnsPath");
    if (!ns.IsUndefined() && !ns.IsNull()) {
      if (!ns.IsString())
        throw Napi::TypeError::New(env, "netnsPath must be a string");
      task->netnsPath = ns.As<Napi::String>().Utf8Value();
    }
  }
  task->argv = std::move(argv);
  task->env = std::move(envv);
  task->mounts = std::move(mounts);
  Napi::Promise promise = task->deferred.Promise();
  task->Queue();
  return promise;
}

Napi::Value PidfdSignal(const Napi::CallbackInfo &info) {
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
    throw Napi::TypeError::New(info.Env(), "pidfdSignal(pidfd, signal)");
  grove_error_t err{};
  int r = grove_pidfd_signal(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), &err);
  if (r < 0)
    throw ToJsError(info.Env(), err);
  return Napi::Boolean::New(info.Env(), r == 1);
}

Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  if (info.Length() < 1 || !info[0].IsNumber())
    throw Napi::TypeError::New(info.Env(), "closeFd(fd)");
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("start", Napi::Function::New(env, Start));
  exports.Set("pidfdSignal", Napi::Function::New(env, PidfdSignal));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  return exports;
}

} // namespace

NODE_API_MODULE(grove_bench, Init)
