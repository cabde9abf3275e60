/*
 * gle_rate_module.cpp -- rate-exact GLE (Ellenberger et al. 2026) for NEST 3.10.
 *
 * Why C++ and not NESTML: NESTML 9 neurons can neither send nor receive NEST's
 * secondary (rate) events, and NESTML synapses are built around spike events
 * (models/nest/README.md).  These four models are the smallest set that runs the
 * spec's discrete update (docs/model.md#discrete-time) step for step inside NEST:
 *
 *   gle_rate_input             replays the network input x(t) as a rate stream
 *   gle_rate_neuron            one GLE neuron: soma u (tau_m) and the error
 *                              compartment v (tau_r), eqs. of docs/model.md#continuous-model;
 *                              sends r = phi(u_pro) (InstantaneousRateConnectionEvent)
 *                              and e (LearningSignalConnectionEvent)
 *   gle_rate_synapse           bottom-up W_ij r_j, plastic: dW_ij = eta e_i r_j
 *                              (e_i read from the postsynaptic neuron)
 *   gle_rate_feedback_synapse  top-down W_ij e_i to neuron j, the same update
 *                              (r_j read from its target), so B = W^T exactly
 *
 * Timing.  With use_wfr off and min_delay = one step, every value sent during
 * step k is delivered between steps k and k+1: the spec's synchronous update.
 * A synapse applies the weight change of step k at its next delivery (before
 * passing the next value), so the value it passes uses the weights of the step
 * it belongs to.  The feedback synapse passes e(k) one delivery after it was
 * computed and therefore lags one more update: it reads r_j from two steps back.
 * A step counter makes the updates idempotent across a "hold" step
 * (``hold_steps``), in which neurons repeat their output without updating; the
 * engine uses it to load the first input of a run.
 */

#include <cmath>
#include <string>
#include <vector>

#include "archiving_node.h"
#include "connection.h"
#include "dict_util.h"
#include "event.h"
#include "event_delivery_manager_impl.h"
#include "exceptions.h"
#include "kernel_manager.h"
#include "nest_extension_interface.h"
#include "secondary_event.h"

namespace gle
{
using namespace nest;

// ---------------------------------------------------------------------------
// transfer functions phi and phi' (names as in cortical_gle/phi.py)
enum class Phi
{
  tanh_,
  linear,
  sigmoid,
  softplus,
  relu
};

inline Phi
phi_from_name( const std::string& name )
{
  if ( name == "tanh" )
    return Phi::tanh_;
  if ( name == "linear" )
    return Phi::linear;
  if ( name == "sigmoid" )
    return Phi::sigmoid;
  if ( name == "softplus" )
    return Phi::softplus;
  if ( name == "relu" )
    return Phi::relu;
  throw BadProperty( "gle_rate_neuron: unknown phi '" + name + "'; known: tanh, linear, sigmoid, softplus, relu" );
}

inline std::string
phi_name( Phi p )
{
  switch ( p )
  {
  case Phi::tanh_:
    return "tanh";
  case Phi::linear:
    return "linear";
  case Phi::sigmoid:
    return "sigmoid";
  case Phi::softplus:
    return "softplus";
  default:
    return "relu";
  }
}

inline double
sigmoid( double x )
{
  return 1.0 / ( 1.0 + std::exp( -x ) );
}

//! r = phi(x)
inline double
phi_fn( Phi p, double x )
{
  switch ( p )
  {
  case Phi::tanh_:
    return std::tanh( x );
  case Phi::linear:
    return x;
  case Phi::sigmoid:
    return sigmoid( x );
  case Phi::softplus:  // log(1 + e^x), overflow-free
    return std::max( x, 0.0 ) + std::log1p( std::exp( -std::abs( x ) ) );
  default:
    return x > 0.0 ? x : 0.0;
  }
}

//! phi'(x), given r = phi(x)
inline double
phi_prime( Phi p, double x, double r )
{
  switch ( p )
  {
  case Phi::tanh_:
    return 1.0 - r * r;
  case Phi::linear:
    return 1.0;
  case Phi::sigmoid:
    return r * ( 1.0 - r );
  case Phi::softplus:
    return sigmoid( x );
  default:
    return x > 0.0 ? 1.0 : 0.0;
  }
}

inline void
require_one_step_min_delay( const std::string& model )
{
  if ( kernel().connection_manager.get_min_delay() != 1 )
  {
    throw KernelException( model
      + " needs min_delay == resolution (one step), so that every value reaches its target in the next step; "
        "set nest.min_delay = nest.resolution" );
  }
}

// ---------------------------------------------------------------------------
/**
 * gle_rate_input: sends x[0], x[1], ... one value per step (the network input).
 * After the last value it sends 0.
 */
class gle_rate_input : public ArchivingNode
{
public:
  using Node::handle;
  using Node::handles_test_event;
  using Node::sends_secondary_event;

  gle_rate_input()
    : ArchivingNode()
    , pos_( 0 )
  {
  }

  void
  sends_secondary_event( InstantaneousRateConnectionEvent& ) override
  {
  }

  void
  get_status( Dictionary& d ) const override
  {
    d[ "x" ] = x_;
    d[ "position" ] = static_cast< long >( pos_ );
    ArchivingNode::get_status( d );
  }

  void
  set_status( const Dictionary& d ) override
  {
    if ( d.known( "x" ) )
    {
      x_ = d.get< std::vector< double > >( "x" );
      pos_ = 0;
    }
    ArchivingNode::set_status( d );
  }

private:
  void
  init_buffers_() override
  {
  }
  void
  pre_run_hook() override
  {
    require_one_step_min_delay( "gle_rate_input" );
  }

  void
  update( Time const&, const long from, const long to ) override
  {
    std::vector< double > out( kernel().connection_manager.get_min_delay(), 0.0 );
    for ( long lag = from; lag < to; ++lag )
    {
      out[ lag ] = pos_ < x_.size() ? x_[ pos_ ] : 0.0;
      ++pos_;
    }
    InstantaneousRateConnectionEvent ev;
    ev.set_coeffarray( out );
    kernel().event_delivery_manager.send_secondary( *this, ev );
  }

  std::vector< double > x_;
  size_t pos_;
};

// ---------------------------------------------------------------------------
/**
 * gle_rate_neuron: one GLE neuron (representation unit and error unit).
 *
 * Per step dt (docs/model.md#discrete-time; Ellenberger et al. 2026, eqs. of the
 * representation and error units):
 *
 *   inst_e = top * phi'(u_pro(t))        top = sum_i W_ij e_i  or  -beta (r - y) at the output
 *   dv = (inst_e - v) / tau_r ;  e = v + tau_m dv ;  v <- v + dt dv    (prospective errors)
 *   du = (sum_j W_ij r_j + b + gamma e - u) / tau_m ;  u_pro = u + tau_r du ;  u <- u + dt du
 *   r = phi(u_pro) ;  learning:  b <- b + eta e ;  tau_m <- tau_m - eta_tau e du
 */
class gle_rate_neuron : public ArchivingNode
{
public:
  using Node::handle;
  using Node::handles_test_event;
  using Node::sends_secondary_event;

  gle_rate_neuron()
    : ArchivingNode()
  {
  }

  void
  sends_secondary_event( InstantaneousRateConnectionEvent& ) override
  {
  }
  void
  sends_secondary_event( LearningSignalConnectionEvent& ) override
  {
  }

  size_t
  handles_test_event( InstantaneousRateConnectionEvent&, size_t receptor_type ) override
  {
    if ( receptor_type != 0 )
      throw UnknownReceptorType( receptor_type, get_name() );
    return 0;
  }
  size_t
  handles_test_event( LearningSignalConnectionEvent&, size_t receptor_type ) override
  {
    if ( receptor_type != 0 )
      throw UnknownReceptorType( receptor_type, get_name() );
    return 0;
  }

  void
  handle( InstantaneousRateConnectionEvent& e ) override
  {
    accumulate( e, bottom_up_ );
  }
  void
  handle( LearningSignalConnectionEvent& e ) override
  {
    accumulate( e, top_down_ );
  }

  void get_status( Dictionary& d ) const override;
  void set_status( const Dictionary& d ) override;

  // read by the plastic synapses at delivery
  //! bottom-up weight change of the last step for presynaptic rate r: eta (e r)
  double
  dw_bottom_up( double r ) const
  {
    return eta_last_ * ( e_ * r );
  }
  //! top-down weight change for the presynaptic error e of two steps back: eta (e r), r of that step
  double
  dw_top_down( double e ) const
  {
    return eta_hist_[ 1 ] * ( e * r_hist_[ 1 ] );
  }
  //! number of steps done (a synapse applies each step's change once)
  long
  steps() const
  {
    return steps_;
  }

private:
  template < typename EventT >
  void
  accumulate( EventT& e, std::vector< double >& buf )
  {
    const double w = e.get_weight();
    size_t i = 0;
    auto it = e.begin();
    while ( it != e.end() )  // get_coeffvalue advances it
    {
      buf[ i++ ] += w * e.get_coeffvalue( it );
    }
  }

  void
  init_buffers_() override
  {
    const size_t n = kernel().connection_manager.get_min_delay();
    bottom_up_.assign( n, 0.0 );
    top_down_.assign( n, 0.0 );
  }
  void
  pre_run_hook() override
  {
    require_one_step_min_delay( "gle_rate_neuron" );
    init_buffers_();
  }
  void update( Time const&, const long from, const long to ) override;

  // parameters (times in ms, the kernel's unit)
  double tau_m_ = 10.0, tau_r_ = 10.0, b_ = 0.0, gamma_ = 0.0, beta_ = 1.0;
  double eta_ = 0.0, eta_tau_ = 0.0, tau_min_ = 0.0;
  bool prospective_ = true, learn_bias_ = true, learn_tau_ = false, is_output_ = false, record_ = false;
  Phi phi_ = Phi::tanh_;
  std::vector< double > target_;  //!< y(t) of the output neuron, one per step from the last set
  long hold_steps_ = 0;           //!< steps to repeat the output without updating

  // state: everything starts at zero (docs/model.md#discrete-time)
  double u_ = 0.0, v_ = 0.0, r_ = 0.0, rp_ = 0.0, e_ = 0.0, du_ = 0.0, u_pro_ = 0.0;
  double eta_last_ = 0.0;                //!< eta of the last step (0: no learning)
  double eta_hist_[ 2 ] = { 0.0, 0.0 };  //!< eta of the last two steps
  double r_hist_[ 2 ] = { 0.0, 0.0 };    //!< r before each of the last two steps
  long steps_ = 0;
  size_t target_pos_ = 0;
  long tau_clamps_ = 0;
  std::vector< double > rec_r_, rec_u_, rec_u_pro_, rec_e_;

  std::vector< double > bottom_up_, top_down_;
};

void
gle_rate_neuron::update( Time const&, const long from, const long to )
{
  const double dt = Time::get_resolution().get_ms();
  const size_t n = kernel().connection_manager.get_min_delay();
  std::vector< double > r_out( n, 0.0 ), e_out( n, 0.0 );
  for ( long lag = from; lag < to; ++lag )
  {
    if ( hold_steps_ > 0 )
    {
      --hold_steps_;
      r_out[ lag ] = r_;
      e_out[ lag ] = e_;
      continue;
    }
    double top = top_down_[ lag ];
    if ( is_output_ )
    {
      top = 0.0;
      if ( target_pos_ < target_.size() )
      {
        const double y = target_[ target_pos_++ ];
        if ( not std::isnan( y ) )  // NaN: no target at this step
          top = -beta_ * ( r_ - y );
      }
    }
    const double inst_e = top * rp_;
    double err = inst_e;
    if ( prospective_ )
    {
      const double dv = ( inst_e - v_ ) / tau_r_;
      err = v_ + tau_m_ * dv;
      v_ = v_ + dt * dv;
    }
    e_ = err;
    const double d = ( bottom_up_[ lag ] + b_ + gamma_ * err - u_ ) / tau_m_;
    u_pro_ = u_ + tau_r_ * d;
    u_ = u_ + dt * d;
    du_ = d;
    // plasticity: the factors the synapses read at their next delivery
    eta_last_ = eta_;
    eta_hist_[ 1 ] = eta_hist_[ 0 ];
    eta_hist_[ 0 ] = eta_;
    r_hist_[ 1 ] = r_hist_[ 0 ];
    r_hist_[ 0 ] = r_;
    if ( learn_bias_ )
      b_ = b_ + eta_ * err;
    if ( learn_tau_ )
    {
      tau_m_ = tau_m_ - eta_tau_ * ( err * d );
      if ( tau_m_ < tau_min_ )
      {
        tau_m_ = tau_min_;
        ++tau_clamps_;
      }
    }
    r_ = phi_fn( phi_, u_pro_ );
    rp_ = phi_prime( phi_, u_pro_, r_ );
    ++steps_;
    if ( not std::isfinite( u_pro_ ) )
      throw KernelException( "gle_rate_neuron " + std::to_string( get_node_id() )
        + ": non-finite prospective potential (the network diverged)" );
    if ( record_ )
    {
      rec_r_.push_back( r_ );
      rec_u_.push_back( u_ );
      rec_u_pro_.push_back( u_pro_ );
      rec_e_.push_back( e_ );
    }
    r_out[ lag ] = r_;
    e_out[ lag ] = e_;
  }
  InstantaneousRateConnectionEvent rev;
  rev.set_coeffarray( r_out );
  kernel().event_delivery_manager.send_secondary( *this, rev );
  LearningSignalConnectionEvent eev;
  eev.set_coeffarray( e_out );
  kernel().event_delivery_manager.send_secondary( *this, eev );
  std::fill( bottom_up_.begin(), bottom_up_.end(), 0.0 );
  std::fill( top_down_.begin(), top_down_.end(), 0.0 );
}

void
gle_rate_neuron::get_status( Dictionary& d ) const
{
  d[ "tau_m" ] = tau_m_;
  d[ "tau_r" ] = tau_r_;
  d[ "b" ] = b_;
  d[ "gamma" ] = gamma_;
  d[ "beta" ] = beta_;
  d[ "eta" ] = eta_;
  d[ "eta_tau" ] = eta_tau_;
  d[ "tau_min" ] = tau_min_;
  d[ "prospective" ] = prospective_;
  d[ "learn_bias" ] = learn_bias_;
  d[ "learn_tau" ] = learn_tau_;
  d[ "is_output" ] = is_output_;
  d[ "record" ] = record_;
  d[ "phi" ] = phi_name( phi_ );
  d[ "hold_steps" ] = hold_steps_;
  d[ "u" ] = u_;
  d[ "v" ] = v_;
  d[ "r" ] = r_;
  d[ "rp" ] = rp_;
  d[ "e" ] = e_;
  d[ "du" ] = du_;
  d[ "u_pro" ] = u_pro_;
  d[ "eta_last" ] = eta_last_;
  d[ "eta_hist" ] = std::vector< double >( eta_hist_, eta_hist_ + 2 );
  d[ "steps" ] = steps_;
  d[ "tau_clamps" ] = tau_clamps_;
  d[ "rec_r" ] = rec_r_;
  d[ "rec_u" ] = rec_u_;
  d[ "rec_u_pro" ] = rec_u_pro_;
  d[ "rec_e" ] = rec_e_;
  ArchivingNode::get_status( d );
}

void
gle_rate_neuron::set_status( const Dictionary& d )
{
  // work on copies so that a rejected value changes nothing
  double tau_m = tau_m_, tau_r = tau_r_, tau_min = tau_min_, eta = eta_, eta_tau = eta_tau_;
  d.update_value( "tau_m", tau_m );
  d.update_value( "tau_r", tau_r );
  d.update_value( "tau_min", tau_min );
  d.update_value( "eta", eta );
  d.update_value( "eta_tau", eta_tau );
  if ( not( tau_m > 0 ) or not( tau_r > 0 ) )
    throw BadProperty( "gle_rate_neuron: tau_m and tau_r must be > 0" );
  if ( not( eta >= 0 ) or not( eta_tau >= 0 ) )
    throw BadProperty( "gle_rate_neuron: eta and eta_tau must be >= 0" );
  std::string phi;
  Phi phi_new = phi_;
  if ( d.update_value( "phi", phi ) )
    phi_new = phi_from_name( phi );
  tau_m_ = tau_m;
  tau_r_ = tau_r;
  tau_min_ = tau_min;
  eta_ = eta;
  eta_tau_ = eta_tau;
  phi_ = phi_new;
  d.update_value( "b", b_ );
  d.update_value( "gamma", gamma_ );
  d.update_value( "beta", beta_ );
  d.update_value( "prospective", prospective_ );
  d.update_value( "learn_bias", learn_bias_ );
  d.update_value( "learn_tau", learn_tau_ );
  d.update_value( "is_output", is_output_ );
  d.update_value( "hold_steps", hold_steps_ );
  if ( d.update_value( "record", record_ ) or d.known( "clear_record" ) )
  {
    bool clear = false;
    d.update_value( "clear_record", clear );
    if ( clear )
    {
      rec_r_.clear();
      rec_u_.clear();
      rec_u_pro_.clear();
      rec_e_.clear();
    }
  }
  if ( d.known( "target" ) )
  {
    target_ = d.get< std::vector< double > >( "target" );
    target_pos_ = 0;
  }
  // state (the engine zeroes it on reset)
  d.update_value( "u", u_ );
  d.update_value( "v", v_ );
  d.update_value( "r", r_ );
  d.update_value( "rp", rp_ );
  d.update_value( "e", e_ );
  d.update_value( "du", du_ );
  d.update_value( "u_pro", u_pro_ );
  bool drop = false;  // forget the weight changes not yet applied by the synapses
  if ( d.update_value( "drop_pending", drop ) and drop )
  {
    eta_last_ = eta_hist_[ 0 ] = eta_hist_[ 1 ] = 0.0;
  }
  d.update_value( "tau_clamps", tau_clamps_ );
  ArchivingNode::set_status( d );
}

// ---------------------------------------------------------------------------
/*
 * The two plastic GLE synapses differ only in the stream they carry and in
 * which neuron supplies the second factor of dW = eta e_i r_j:
 *
 *   gle_rate_synapse           bottom-up j -> i, carries W_ij r_j; e_i from its target
 *   gle_rate_feedback_synapse  top-down i -> j, carries W_ij e_i; r_j (two steps back)
 *                              from its target, so that it stays equal to W_ij (B = W^T)
 */
struct BottomUp
{
  typedef InstantaneousRateConnectionEvent EventType;
  static constexpr const char* name = "gle_rate_synapse";
  static constexpr bool source_is_neuron = false;  // the input nodes also send rates
  static double
  dw( const gle_rate_neuron& post, double r_pre )
  {
    return post.dw_bottom_up( r_pre );
  }
};

struct TopDown
{
  typedef LearningSignalConnectionEvent EventType;
  static constexpr const char* name = "gle_rate_feedback_synapse";
  static constexpr bool source_is_neuron = true;
  static double
  dw( const gle_rate_neuron& post, double e_pre )
  {
    return post.dw_top_down( e_pre );
  }
};

template < typename targetidentifierT, typename Direction >
class gle_plastic_connection : public Connection< targetidentifierT >
{
public:
  typedef CommonSynapseProperties CommonPropertiesType;
  typedef Connection< targetidentifierT > ConnectionBase;
  typedef typename Direction::EventType EventType;
  static constexpr ConnectionModelProperties properties = ConnectionModelProperties::NONE;

  using ConnectionBase::get_rport;
  using ConnectionBase::get_target;

  std::unique_ptr< SecondaryEvent >
  get_secondary_event()
  {
    return std::make_unique< EventType >();
  }

  void
  check_connection( Node& s, Node& t, size_t receptor_type, const CommonPropertiesType& )
  {
    // with several threads a source on another thread is a proxy: judge it by its model's prototype
    const Node& source = s.is_proxy() ? kernel().model_manager.get_node_model( s.get_model_id() )->get_prototype() : s;
    if ( dynamic_cast< gle_rate_neuron* >( &t ) == nullptr
      or ( Direction::source_is_neuron and dynamic_cast< const gle_rate_neuron* >( &source ) == nullptr ) )
      throw IllegalConnection( std::string( Direction::name ) + ": the target"
        + ( Direction::source_is_neuron ? " and the source" : "" ) + " must be gle_rate_neuron" );
    EventType ev;
    s.sends_secondary_event( ev );
    ev.set_sender( s );
    ConnectionBase::target_.set_rport( t.handles_test_event( ev, receptor_type ) );
    ConnectionBase::target_.set_target( &t );
  }

  bool
  send( Event& e, size_t tid, const CommonSynapseProperties& )
  {
    auto* post = static_cast< gle_rate_neuron* >( get_target( tid ) );
    if ( post->steps() != applied_ )  // apply the change of the target's last step once
    {
      weight_ = weight_ + Direction::dw( *post, last_ );
      applied_ = post->steps();
    }
    auto& ev = static_cast< EventType& >( e );
    auto it = ev.begin();
    last_ = ev.get_coeffvalue( it );  // one value per delivery (min_delay == one step)
    e.set_weight( weight_ );
    e.set_receiver( *post );
    e.set_rport( get_rport() );
    e();
    return true;
  }

  void
  get_status( Dictionary& d ) const
  {
    ConnectionBase::get_status( d );
    d[ names::weight ] = weight_;
    d[ "last_value" ] = last_;
    d[ "applied" ] = applied_;
    d[ names::size_of ] = static_cast< long >( sizeof( *this ) );
  }

  void
  set_status( const Dictionary& d, ConnectorModel& cm )
  {
    if ( d.known( names::delay ) )
      set_delay( 0.0 );
    ConnectionBase::set_status( d, cm );
    d.update_value( names::weight, weight_ );
    d.update_value( "last_value", last_ );
    d.update_value( "applied", applied_ );
  }

  void
  set_weight( double w )
  {
    weight_ = w;
  }
  void
  set_delay( double )
  {
    throw BadProperty( std::string( Direction::name ) + " has no delay (values arrive in the next step)" );
  }

private:
  double weight_ = 1.0;
  double last_ = 0.0;  //!< the value (r_j or e_i) passed at the last delivery
  long applied_ = 0;   //!< target step count whose change is in weight_
};

template < typename targetidentifierT, typename Direction >
constexpr ConnectionModelProperties gle_plastic_connection< targetidentifierT, Direction >::properties;

template < typename targetidentifierT >
using gle_rate_synapse = gle_plastic_connection< targetidentifierT, BottomUp >;
template < typename targetidentifierT >
using gle_rate_feedback_synapse = gle_plastic_connection< targetidentifierT, TopDown >;

}  // namespace gle

// ---------------------------------------------------------------------------
class gle_rate_module : public nest::NESTExtensionInterface
{
public:
  void
  initialize() override
  {
    nest::register_node_model< gle::gle_rate_input >( "gle_rate_input" );
    nest::register_node_model< gle::gle_rate_neuron >( "gle_rate_neuron" );
    nest::register_connection_model< gle::gle_rate_synapse >( "gle_rate_synapse" );
    nest::register_connection_model< gle::gle_rate_feedback_synapse >( "gle_rate_feedback_synapse" );
  }
};

gle_rate_module gle_rate_module_LTX_module;
